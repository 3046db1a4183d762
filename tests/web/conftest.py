import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from custodes.ingest.pipeline import Ingestor
from custodes.media.synth import ClipSpec, write_clip
from custodes.store.case import Case
from custodes.triage.runner import run_triage
from custodes.web.app import create_app
from custodes.web.users import add_user

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def web_case(tmp_path_factory, demo_drive):
    drive, truth = demo_drive
    case = Case.init(tmp_path_factory.mktemp("web") / "case", "tester", title="Web test case")
    Ingestor(case, "tester").run([drive])
    run_triage(case, "tester", workers=1)
    from custodes.timeline.build import read_recordings
    from custodes.timeline.complaints import import_csv

    read_recordings(case)
    reg = tmp_path_factory.mktemp("register") / "register.csv"
    reg.write_text("ref,start,end,unit,person,text,camera\n"
                   f"K-7,{truth.gap['start'].replace('T', ' ')},{truth.gap['end'].replace('T', ' ')},"
                   "cell 14,P-3,Beaten in the corridor,CAM-02\n")
    import_csv(case, reg, "tester")
    add_user(case, "rita", "reviewer", PASSWORD, "tester")
    add_user(case, "vera", "viewer", PASSWORD, "tester")
    add_user(case, "otto", "reviewer", PASSWORD, "tester")
    add_user(case, "ivan", "investigator", PASSWORD, "tester")
    return case, truth


def one_clip_case(root: Path, clip: str, spec: ClipSpec, title: str) -> tuple[Case, str]:
    """A case at ``root/case`` holding one synthetic clip, written as ``root/drive/clip`` and ingested from that
    drive: the case and the clip's sha256."""
    (root / "drive").mkdir()
    write_clip(root / "drive" / clip, spec)
    case = Case.init(root / "case", "tester", title=title)
    Ingestor(case, "tester").run([root / "drive"])
    (sha,) = case.display_names()
    return case, sha


def login(client: TestClient, user: str, password: str = PASSWORD):
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": user, "password": password, "csrf": csrf},
                       follow_redirects=False)


def session_csrf(client: TestClient) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/").text).group(1)


@pytest.fixture
def client(web_case):
    case, _ = web_case
    return TestClient(create_app(case), client=("127.0.0.1", 50000))
