"""An item the review app cannot play is shown as what it is: a damaged or unreadable video says that it could
not be opened and why (not "not a video"), with the download offered as for any item not shown."""

from fastapi.testclient import TestClient

from custodes.ingest.pipeline import Ingestor
from custodes.store.case import Case
from custodes.web.app import create_app
from custodes.web.users import add_user
from tests.web.conftest import PASSWORD, login


def test_an_unreadable_video_says_it_could_not_be_opened_and_why(tmp_path):
    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "CAM02_20260314_020300.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 4000)
    case = Case.init(tmp_path / "case", "tester", title="broken")
    Ingestor(case, "tester").run([drive])
    add_user(case, "rita", "reviewer", PASSWORD, "tester")
    (sha,) = case.display_names()
    c = TestClient(create_app(case))
    assert login(c, "rita").status_code == 303
    page = c.get(f"/items/{sha}").text
    assert "This file could not be opened as video or sound:" in page
    assert "not a video, an image or text" not in page and 'id="download"' in page
