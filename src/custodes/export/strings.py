"""The report's fixed text in English and Russian, chosen at export (``--language en|ru``)."""

from __future__ import annotations

LANGUAGES = ("en", "ru")

EN: dict[str, str] = {
    "title": "Case report",
    "case": "Case",
    "case_title": "Title",
    "exporter": "Exported by",
    "exported": "Exported",
    "tool": "Made with",
    "ledger_head": "Ledger head",
    "ledger_head_help": "the fingerprint of the whole chain of custody at export; ask the sender to confirm it "
                        "by another channel",
    "exporter_key": "Exporter's key fingerprint",
    "case_key": "Case key fingerprint",
    "how_to_verify": "How to verify this package",
    "how_to_verify_text": "Every file of the package is listed with its SHA-256 in SHA256SUMS: in the package "
                          "folder, run <code>sha256sum -c SHA256SUMS</code>; every line must end in OK. That "
                          "proves only that the files match SHA256SUMS, not that SHA256SUMS is the exporter's. "
                          "Then run <code>custodes verify-package FOLDER</code>: it proves that (SHA256SUMS is in "
                          "the manifest the exporter signed) and also checks the signed chain of custody and "
                          "that every original was recorded at intake. VERIFY.txt explains both step by step.",
    "page": "page",
    "of": "of",
    "contents": "Contents",
    "summary": "Summary of findings",
    "summary_intro": "Incidents annotated by the case's reviewers, grouped by label. These are the reviewers' "
                     "observations; machine scores are not findings (see the method statement).",
    "no_annotations": "No incident has been annotated in the exported items.",
    "label": "Label",
    "exhibit": "Exhibit",
    "camera": "Camera",
    "timeline": "Camera timeline (recordings and gaps)",
    "clock": "Clock time",
    "people": "People (pseudonym, role)",
    "reviewer": "Reviewer",
    "second_reviewer": "Second reviewer",
    "note": "Note",
    "exhibits": "List of exhibits",
    "file_name": "File name",
    "start_end": "Start – end (camera clock)",
    "duration": "Duration",
    "sha256": "SHA-256",
    "found_at": "Where each copy was found",
    "derived_from": "Derived from",
    "original": "original",
    "unknown": "unknown",
    "none": "none",
    "none_found": "none found",
    "exhibit_page": "Exhibit",
    "size": "Size",
    "bytes": "bytes",
    "picture": "Picture",
    "file_in_package": "File in the package",
    "contact_sheet": "Contact sheet (frames evenly spaced through the file)",
    "no_frames": "no decodable frames",
    "over_time": "Triage score and audio level over time",
    "legend_score": "triage score (orders the review; not a finding)",
    "legend_high": "score of 0.5 or more",
    "legend_loud": "audio level (loudness, dB)",
    "no_signals": "no triage signals for this file",
    "flagged": "Flagged segments (machine triage)",
    "score": "score",
    "review": "review",
    "annotations": "Annotations (reviewers)",
    "by": "by",
    "edits": "edits annotation",
    "cuts": "Scene cuts inside the file (edits, camera switches, jumps in time)",
    "cut_keyframes": "or in the seconds before: found between keyframes",
    "in_file_edits": "Signs of editing inside the file (the clock jumping, holes in the frame timestamps, "
                     "codec changes)",
    "edits_not_examined": "not examined (the file's clock was not read for the timeline)",
    "gaps": "Gaps in this camera's recording around this file",
    "gap_before": "before this file",
    "gap_after": "after this file",
    "transcript": "Transcript excerpts",
    "machine_transcript": "machine transcript",
    "machine_translation": "machine translation",
    "confidence": "confidence",
    "language": "language",
        "derivative_of": "This file is a derivative, made from exhibit",
    "derivative_kind": "made by",
    "derivative_credentials": "It carries Content Credentials (C2PA) inside the file, signed with the case's "
                              "certificate (credentials/case-ca.pem in this package) and naming the original by "
                              "its SHA-256.",
    "damaged": "This file is damaged",
    "custody": "Chain of custody",
    "custody_intro": "Every step below is an entry of the case's signed ledger (times in",
    "when": "When",
    "who": "Who",
    "what": "What happened",
    "method": "Method statement",
    "not_included": "What was not included and why",
    "not_included_none": "Every file of the case is in this package.",
    "reason": "Reason",
    "glossary": "Glossary",
    "seconds": "s",
    "in_file": "in the file",
    "machine_mark_note": "Every transcript line is a machine transcript: it was produced by speech recognition "
                         "and has not been checked by a person unless an annotation says so.",
}

RU: dict[str, str] = {
    "title": "Отчёт по делу",
    "case": "Дело",
    "case_title": "Название",
    "exporter": "Экспортировал",
    "exported": "Дата экспорта",
    "tool": "Программа",
    "ledger_head": "Вершина журнала",
    "ledger_head_help": "отпечаток всей цепочки хранения на момент экспорта; попросите отправителя "
                        "подтвердить его по другому каналу",
    "exporter_key": "Отпечаток ключа экспортировавшего",
    "case_key": "Отпечаток ключа дела",
    "how_to_verify": "Как проверить этот пакет",
    "how_to_verify_text": "Каждый файл пакета указан со своим SHA-256 в файле SHA256SUMS: в папке пакета "
                          "выполните <code>sha256sum -c SHA256SUMS</code>; каждая строка должна заканчиваться "
                          "на OK. Это доказывает лишь, что файлы совпадают с SHA256SUMS, но не то, что сам "
                          "SHA256SUMS составлен экспортировавшим. Затем выполните <code>custodes verify-package "
                          "ПАПКА</code>: программа доказывает это (SHA256SUMS указан в манифесте, подписанном "
                          "экспортировавшим), а также проверяет подписанную цепочку хранения и то, что каждый "
                          "оригинал был записан при приёме. В VERIFY.txt оба шага описаны подробно.",
    "page": "страница",
    "of": "из",
    "contents": "Содержание",
    "summary": "Сводка выводов",
    "summary_intro": "Эпизоды, отмеченные проверяющими по делу, сгруппированные по метке. Это наблюдения "
                     "проверяющих; машинные оценки выводами не являются (см. описание методов).",
    "no_annotations": "В экспортированных материалах нет отмеченных эпизодов.",
    "label": "Метка",
    "exhibit": "Материал",
    "camera": "Камера",
    "timeline": "Хронология камер (записи и пропуски)",
    "clock": "Время по часам",
    "people": "Лица (псевдоним, роль)",
    "reviewer": "Проверяющий",
    "second_reviewer": "Второй проверяющий",
    "note": "Примечание",
    "exhibits": "Перечень материалов",
    "file_name": "Имя файла",
    "start_end": "Начало – конец (часы камеры)",
    "duration": "Длительность",
    "sha256": "SHA-256",
    "found_at": "Где найдена каждая копия",
    "derived_from": "Получен из",
    "original": "оригинал",
    "unknown": "неизвестно",
    "none": "нет",
    "none_found": "не найдено",
    "exhibit_page": "Материал",
    "size": "Размер",
    "bytes": "байт",
    "picture": "Изображение",
    "file_in_package": "Файл в пакете",
    "contact_sheet": "Раскадровка (кадры через равные промежутки)",
    "no_frames": "нет декодируемых кадров",
    "over_time": "Оценка сортировки и уровень звука во времени",
    "legend_score": "оценка сортировки (порядок просмотра; не вывод)",
    "legend_high": "оценка 0,5 и выше",
    "legend_loud": "уровень звука (громкость, дБ)",
    "no_signals": "для этого файла нет сигналов сортировки",
    "flagged": "Отмеченные отрезки (машинная сортировка)",
    "score": "оценка",
    "review": "проверка",
    "annotations": "Пометки проверяющих",
    "by": "автор",
    "edits": "исправляет пометку",
    "cuts": "Склейки внутри файла (монтаж, переключение камер, скачки времени)",
    "cut_keyframes": "или в секунды до: найдено между ключевыми кадрами",
    "in_file_edits": "Признаки монтажа внутри файла (скачки часов, пропуски в метках времени кадров, смена "
                     "параметров кодека)",
    "edits_not_examined": "не проверялось (часы файла не считывались для хронологии)",
    "gaps": "Пропуски в записи этой камеры рядом с файлом",
    "gap_before": "до этого файла",
    "gap_after": "после этого файла",
    "transcript": "Фрагменты расшифровки",
    "machine_transcript": "машинная расшифровка",
    "machine_translation": "машинный перевод",
    "confidence": "уверенность",
    "language": "язык",
        "derivative_of": "Этот файл — производный, сделан из материала",
    "derivative_kind": "способ",
    "derivative_credentials": "Внутри файла есть Content Credentials (C2PA), подписанные сертификатом дела "
                              "(credentials/case-ca.pem в этом пакете), с SHA-256 оригинала.",
    "damaged": "Файл повреждён",
    "custody": "Цепочка хранения",
    "custody_intro": "Каждый шаг ниже — запись подписанного журнала дела (время в",
    "when": "Когда",
    "who": "Кто",
    "what": "Что произошло",
    "method": "Описание методов",
    "not_included": "Что не вошло в пакет и почему",
    "not_included_none": "Все файлы дела вошли в этот пакет.",
    "reason": "Причина",
    "glossary": "Глоссарий",
    "seconds": "с",
    "in_file": "в файле",
    "machine_mark_note": "Каждая строка расшифровки — машинная расшифровка: она получена распознаванием речи и "
                         "не проверена человеком, если об этом не сказано в пометке.",
}

METHOD = {
    "en": [
        ("Triage", "A computer ranks stretches of video by how likely they are to show violence, from motion, a "
                   "video model, loudness and sound events (shouting, screaming, impacts). The score only orders "
                   "what people review first. A score is not a finding: a high score can be a false alarm and a "
                   "low score can hide an incident; only the reviewers' annotations are observations."),
        ("On-screen clock (OCR)", "Camera and clock time are read from the text burnt into the picture by "
                                  "optical character recognition, or from the file's metadata. Clock times are "
                                  "the camera's own clock, which may be wrong."),
        ("Speech recognition", "Speech is transcribed by a machine (Whisper). Machine transcripts can mishear, "
                               "miss words and invent text in noise. Each excerpt is marked as a machine "
                               "transcript with the model's confidence; text that repeats in a loop or that the "
                               "model is known to invent (subtitle credits, sign-offs) is left out and the omission "
                               "is said. A translation, where shown, is a machine translation."),
        ("Integrity", "Every file is named by its SHA-256, computed when the file was received; the originals in "
                      "this package are byte for byte the files received. Each step taken on the case is an entry "
                      "in a ledger in which each entry is signed and contains the fingerprint of the one before."),
    ],
    "ru": [
        ("Сортировка", "Программа упорядочивает отрезки видео по вероятности того, что на них насилие, по "
                       "движению, видеомодели, громкости и звуковым событиям (крик, удары). Оценка лишь задаёт "
                       "порядок просмотра людьми. Оценка — не вывод: высокая оценка может быть ложной тревогой, "
                       "низкая может скрыть эпизод; наблюдениями являются только пометки проверяющих."),
        ("Часы на экране (OCR)", "Камера и время считываются с надписи на изображении оптическим распознаванием "
                                 "символов или из метаданных файла. Это время часов самой камеры, оно может быть "
                                 "неточным."),
        ("Распознавание речи", "Речь расшифрована машиной (Whisper). Машинная расшифровка может ошибаться, "
                               "пропускать слова и выдумывать текст в шуме. Каждый фрагмент помечен как машинная "
                               "расшифровка с уверенностью модели; зацикленные повторы и текст, который модель "
                               "заведомо выдумывает (титры, прощания), не печатаются, и об этом сказано. Перевод, "
                               "где он есть, — машинный перевод."),
        ("Целостность", "Каждый файл назван по своему SHA-256, вычисленному при приёме; оригиналы в пакете "
                        "побайтно совпадают с принятыми файлами. Каждый шаг по делу — запись журнала, в котором "
                        "каждая запись подписана и содержит отпечаток предыдущей."),
    ],
}

MEASURED = {  # the method statement's last part: figures from export/measured.py
    "en": ("Measured error rates", "No error rates were measured for this version of the tool."),
    "ru": ("Измеренная частота ошибок", "Для этой версии программы частота ошибок не измерялась."),
}

GLOSSARY = {
    "en": [
        ("SHA-256", "A 64-character fingerprint of a file's exact bytes. Changing a single bit changes it."),
        ("Ledger", "The case's signed, append-only record of who did what and when."),
        ("Ledger head", "The fingerprint of the ledger's last entry; it fixes the whole history before it."),
        ("Original", "A file exactly as received from its source."),
        ("Derivative", "A new file made from an original (for example a copy with faces blurred); the original "
                       "is never changed."),
        ("Triage score", "A number from 0 to 1 that orders the review; not evidence of anything."),
        ("Machine transcript", "Text produced by speech recognition, unchecked unless said otherwise."),
        ("Machine translation", "A translation produced by a machine, unchecked unless said otherwise."),
        ("Pseudonym", "A label (such as P-5) used instead of a person's name."),
        ("Scene cut", "A point where the picture changes abruptly: an edit, a camera switch or a jump in time."),
        ("Gap", "A stretch of time inside a camera's recorded period that no file covers."),
        ("Content Credentials (C2PA)", "A signed statement inside a derivative naming what it was made from and "
                                       "how."),
    ],
    "ru": [
        ("SHA-256", "Отпечаток точного содержимого файла из 64 символов. Изменение одного бита меняет его."),
        ("Журнал", "Подписанная запись дела, которую можно только дополнять: кто, что и когда сделал."),
        ("Вершина журнала", "Отпечаток последней записи журнала; он закрепляет всю предшествующую историю."),
        ("Оригинал", "Файл в точности в том виде, в каком он получен из источника."),
        ("Производный файл", "Новый файл, сделанный из оригинала (например, копия с размытыми лицами); оригинал "
                             "никогда не изменяется."),
        ("Оценка сортировки", "Число от 0 до 1, задающее порядок просмотра; ничего не доказывает."),
        ("Машинная расшифровка", "Текст, полученный распознаванием речи, не проверенный, если не сказано иное."),
        ("Машинный перевод", "Перевод, сделанный машиной, не проверенный, если не сказано иное."),
        ("Псевдоним", "Обозначение (например, P-5) вместо имени человека."),
        ("Склейка", "Место резкой смены изображения: монтаж, переключение камеры или скачок времени."),
        ("Пропуск", "Промежуток времени внутри записанного периода камеры, не покрытый ни одним файлом."),
        ("Content Credentials (C2PA)", "Подписанное заявление внутри производного файла о том, из чего и как он "
                                       "сделан."),
    ],
}

# the chain of custody in plain words: ledger action -> sentence (the actor is said separately)
ACTIONS = {
    "en": {
        "case.create": "opened the case",
        "batch.start": "started receiving files from {sources}",
        "batch.end": "finished receiving files",
        "ingest": "received {name} and stored it under its SHA-256 (from {source})",
        "ingest.refused": "refused a file: {reason}",
        "triage.run": "ran the machine triage",
        "pose.run": "ran the posture analysis",
        "annotate": "annotated {subject}: {label}",
        "redact.intent": "began a redacted copy of {subject}",
        "redact": "made a redacted copy of {subject}",
        "export": "exported this package",
        "export.done": "confirmed an earlier export",
        "review": "reviewed a flagged stretch of {subject}: {state}",
        "user.enable": "re-enabled a reviewer account",
        "key.register": "registered a signing key",
        "case.migrate": "moved the case's database",
        "case.rekey": "changed the case's encryption key",
        "complaints.import": "imported a complaints register",
        "user.add": "added a reviewer account",
        "user.disable": "disabled a reviewer account",
        "views": "viewed footage in the review app",
        "login": "signed in to the review app",
        "user.role": "changed the role of reviewer account {user} to {role}",
        "user.link": "linked reviewer account {user} to a team-server user",
        "user.password": "changed or reset the password of reviewer account {user}",
        "assign": "assigned footage to {user}",
        "c2pa.ca": "recorded the case's content-credential certificates",
        "records.seal": "sealed the case's findings into the ledger",
        "records.seal.void": "recorded that an earlier seal of findings never took effect",
        "case.recover": "recovered the case after an interrupted write",
        "exposure.override": "continued viewing past the daily limit of flagged footage",
        "exposure.settings": "changed their own limits for viewing flagged footage",
        "exposure.defaults": "changed the case's limits for viewing flagged footage",
        "view": "opened {subject} in the review app",
        "download": "downloaded {subject} from the review app",
        "playback": "played {subject} in the review app",
        "logout": "signed out of the review app",
        "dupes.run": "searched the case for near-duplicate copies",
        "camera.rename": "recorded that camera {camera} as read from the overlay is camera {to} ({reason})",
    },
    "ru": {
        "case.create": "открыл(а) дело",
        "batch.start": "начал(а) приём файлов из {sources}",
        "batch.end": "закончил(а) приём файлов",
        "ingest": "принял(а) {name} и сохранил(а) под его SHA-256 (из {source})",
        "ingest.refused": "отказал(а) в приёме файла: {reason}",
        "triage.run": "запустил(а) машинную сортировку",
        "pose.run": "запустил(а) анализ поз",
        "annotate": "сделал(а) пометку к {subject}: {label}",
        "redact.intent": "начал(а) обезличенную копию {subject}",
        "redact": "сделал(а) обезличенную копию {subject}",
        "export": "экспортировал(а) этот пакет",
        "export.done": "подтвердил(а) более ранний экспорт",
        "review": "проверил(а) отмеченный отрезок {subject}: {state}",
        "user.enable": "снова включил(а) учётную запись проверяющего",
        "key.register": "зарегистрировал(а) ключ подписи",
        "case.migrate": "перенёс(ла) базу данных дела",
        "case.rekey": "сменил(а) ключ шифрования дела",
        "complaints.import": "импортировал(а) реестр жалоб",
        "user.add": "добавил(а) учётную запись проверяющего",
        "user.disable": "отключил(а) учётную запись проверяющего",
        "views": "просматривал(а) записи в приложении",
        "login": "вошёл(ла) в приложение",
        "user.role": "изменил(а) роль учётной записи {user} на {role}",
        "user.link": "связал(а) учётную запись {user} с пользователем сервера команды",
        "user.password": "сменил(а) или сбросил(а) пароль учётной записи {user}",
        "assign": "назначил(а) записи проверяющему {user}",
        "c2pa.ca": "записал(а) сертификаты подписи производных файлов дела",
        "records.seal": "закрепил(а) результаты анализа в журнале",
        "records.seal.void": "записал(а), что более раннее закрепление результатов не состоялось",
        "case.recover": "восстановил(а) дело после прерванной записи",
        "exposure.override": "продолжил(а) просмотр сверх дневного предела отмеченных записей",
        "exposure.settings": "изменил(а) свои пределы просмотра отмеченных записей",
        "exposure.defaults": "изменил(а) пределы просмотра отмеченных записей для дела",
        "view": "открыл(а) {subject} в приложении",
        "download": "скачал(а) {subject} из приложения",
        "playback": "воспроизвёл(ла) {subject} в приложении",
        "logout": "вышел(ла) из приложения",
        "dupes.run": "провёл(а) поиск почти одинаковых копий в деле",
        "camera.rename": "записал(а), что камера {camera} (как прочитано с экрана) — это камера {to} ({reason})",
    },
}

LEFT_OUT = {
    "en": {
        "unreadable": "could not be read as video",
        "not_media": "not a video or audio file",
        "damaged": "damaged",
        "unprobed": "never examined as media",
        "not_chosen": "not among the exhibits chosen for this package",
        "derivative": "a redacted copy of a file not in this package",
        "refused": "refused at intake",
        "stored_later": "a file at the same place was stored by another intake; it may not be the same file",
        "archive": "an archive; the files inside it are listed on their own",
    },
    "ru": {
        "unreadable": "не читается как видео",
        "not_media": "не видео- и не аудиофайл",
        "damaged": "повреждён",
        "unprobed": "не исследован как медиафайл",
        "not_chosen": "не выбран для этого пакета",
        "derivative": "обезличенная копия файла, не вошедшего в пакет",
        "refused": "отклонён при приёме",
        "stored_later": "файл по тому же пути принят при другом приёме; это может быть другой файл",
        "archive": "архив; файлы из него указаны отдельно",
    },
}


# roles of people in annotations, as the review app stores them (victim, perpetrator, witness)
# what analyze.edits found, by kind; the sentence of what was seen is the analyzer's own (in English)
EDIT_KINDS = {
    "en": {"clock_jump_forward": "the on-screen clock jumps forward",
           "clock_jump_backward": "the on-screen clock jumps back",
           "clock_runs_backwards": "the on-screen clock runs backwards",
           "timestamp_gap": "a hole in the frame timestamps",
           "timestamps_backwards": "the frame timestamps go back",
           "codec_change": "the picture's encoding changes",
           "creation_time_mismatch": "the file's creation time disagrees with the on-screen clock"},
    "ru": {"clock_jump_forward": "часы на экране скачут вперёд",
           "clock_jump_backward": "часы на экране скачут назад",
           "clock_runs_backwards": "часы на экране идут назад",
           "timestamp_gap": "пропуск в метках времени кадров",
           "timestamps_backwards": "метки времени кадров идут назад",
           "codec_change": "меняются параметры кодирования изображения",
           "creation_time_mismatch": "время создания файла расходится с часами на экране"},
}

ROLES = {"en": {}, "ru": {"victim": "потерпевший", "perpetrator": "нарушитель", "witness": "свидетель"}}


def strings(language: str) -> dict[str, str]:
    if language not in LANGUAGES:
        raise ValueError(f"the report language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    return RU if language == "ru" else EN
