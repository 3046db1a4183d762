// Validates the active C2PA manifest of a file with c2pa-ts (TrustNXT's pure TypeScript implementation,
// independent of c2pa-rs behind c2pa-python) and prints one JSON object:
//   {"format", "manifests", "valid", "statuses": [{"code", "success", "explanation"}], "certificates": [...]}
// Usage: node validate.mjs FILE
import * as fs from 'node:fs/promises';
import { BMFF, JPEG, PNG } from '@trustnxt/c2pa-ts/asset';
import { SuperBox } from '@trustnxt/c2pa-ts/jumbf';
import { ManifestStore, ValidationResult } from '@trustnxt/c2pa-ts/manifest';

// c2pa-ts lists only the HEIF brands as readable ISO BMFF; its BMFF reader and its BMFF hash (c2pa.hash.bmff)
// are ISO 14496-12 generic, and the MP4 brands our encoder writes are opened the same way
for (const brand of ['isom', 'iso2', 'iso4', 'iso5', 'iso6', 'mp41', 'mp42', 'avc1']) BMFF.canReadBrands.add(brand);

const buf = new Uint8Array(await fs.readFile(process.argv[2]));
let asset, format;
if (BMFF.canRead(buf)) { asset = new BMFF(buf); format = 'bmff'; }
else if (JPEG.canRead(buf)) { asset = new JPEG(buf); format = 'jpeg'; }
else if (PNG.canRead(buf)) { asset = new PNG(buf); format = 'png'; }
else { console.log(JSON.stringify({ format: null, error: 'not a format c2pa-ts reads' })); process.exit(2); }
const jumbf = asset.getManifestJUMBF();
if (!jumbf) { console.log(JSON.stringify({ format, manifests: 0, valid: false, error: 'no C2PA manifest' })); process.exit(1); }
let result, count = 0;
try {
  const store = ManifestStore.read(SuperBox.fromBuffer(jumbf));
  count = store.manifests.length;
  result = await store.validate(asset);
} catch (e) {
  result = ValidationResult.fromError(e);
}
const statuses = result.statusEntries.map((s) => ({ code: s.code, success: s.success, explanation: s.explanation ?? null, url: s.url ?? null }));
console.log(JSON.stringify({ format, manifests: count, valid: result.isValid, statuses }));
process.exit(result.isValid ? 0 : 1);
