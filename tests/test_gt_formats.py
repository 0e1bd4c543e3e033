"""Ground-truth formats of ``vidcam evaluate``: annotation pickles read by a restricted
unpickler, per-frame mask files, and the hardened JSON (one line per bad file, never a
traceback, a hang or a blown memory)."""

from __future__ import annotations

import json
import os
import pickle
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcam.cli import main
from vidcam.errors import VidcamError
from vidcam.evaluate.clips import Clip, map_truth
from vidcam.evaluate.gt import ground_truths, load_gt, read_json_gt
from vidcam.evaluate.gt_masks import read_mask_gt, write_mask_gt
from vidcam.evaluate.gt_pickle import restricted_loads
from vidcam.video.preprocess import Geometry

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _pyannot_db() -> dict:
    """Two videos in the corrected UCF101-24 layout (numpy strings as keys, uint8/uint16
    arrays, numpy ints for numf), one with two actors."""
    b1 = np.array([[10, 20, 30, 40], [12, 20, 30, 40], [14, 21, 30, 40]], dtype=np.uint8)
    b2 = np.array([[300, 5, 20, 10], [301, 5, 20, 10]], dtype=np.uint16)
    b3 = np.array([[50, 60, 10, 10], [50, 60, 10, 10]], dtype=np.uint8)
    return {
        np.str_("Biking/v_Biking_g01_c01"): {
            "numf": np.uint8(6),
            "label": 2,
            "annotations": [{"label": 2, "sf": 1, "ef": 4, "boxes": b1}],
        },
        np.str_("Fencing/v_Fencing_g02_c03"): {
            "numf": np.uint16(300),
            "label": 7,
            "annotations": [
                {"label": 7, "sf": 0, "ef": 2, "boxes": b2},
                {"label": 7, "sf": 1, "ef": 3, "boxes": b3},
            ],
        },
    }


def _videos(*names: str) -> list[Path]:
    return [Path("clips") / n for n in names]


# -- annotation pickles -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pyannot_pickle_is_read_and_matched_by_name(tmp_path, protocol):
    p = tmp_path / "pyannot.pkl"
    p.write_bytes(pickle.dumps(_pyannot_db(), protocol=protocol))
    gts = ground_truths(p, _videos("v_Biking_g01_c01.avi", "other.mp4", "v_Fencing_g02_c03.mp4"))
    biking, none, fencing = gts
    assert none is None
    # x, y, w, h -> x0, y0, x1, y1; frames [sf, ef), 0-based; label from the key's folder
    assert biking.label == "Biking" and biking.interval == (1, 4)
    assert biking.boxes == [[], [(10, 20, 40, 60)], [(12, 20, 42, 60)], [(14, 21, 44, 61)]]
    assert fencing.interval == (0, 3)
    assert fencing.boxes[0] == [(300, 5, 320, 15)]  # uint16: 300 + 20 does not wrap
    assert fencing.boxes[1] == [(301, 5, 321, 15), (50, 60, 60, 70)]
    assert fencing.boxes[2] == [(50, 60, 60, 70)]
    assert fencing.size is None  # the video's own pixels


def test_pyannot_with_class_names_and_py2_style_keys(tmp_path):
    db = {k.encode(): v for k, v in _pyannot_db().items()}  # bytes keys, as Python 2 wrote
    classes = [f"class{i}" for i in range(10)]
    p = tmp_path / "pyannot_with_class_names.pkl"
    p.write_bytes(pickle.dumps({"db": db, "classes": classes, "trainvideos": []}, protocol=2))
    (g,) = ground_truths(p, _videos("v_Fencing_g02_c03.mp4"))
    assert g.label == "class7"


def test_act_gttubes_layout(tmp_path):
    tube = np.array([[3, 10, 20, 50, 80], [4, 11, 20, 51, 80]], dtype=np.float32)  # 1-based
    top = {
        "labels": ["brush_hair", "catch"],
        "gttubes": {"catch/Clip_01": {1: [tube]}},
        "nframes": {"catch/Clip_01": 40},
        "resolution": {"catch/Clip_01": (240, 320)},
    }
    p = tmp_path / "JHMDB-GT.pkl"
    p.write_bytes(pickle.dumps(top, protocol=2))
    (g,) = ground_truths(p, _videos("Clip_01.avi"))
    assert g.label == "catch" and g.interval == (2, 4) and g.size == (240.0, 320.0)
    assert g.boxes[2] == [(10, 20, 50, 80)] and g.boxes[3] == [(11, 20, 51, 80)]


class _Payload:
    """Writes a marker file when unpickled (a real code-running pickle)."""

    def __init__(self, marker: Path, how: str) -> None:
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "os":
            return (os.system, (f"touch {self.marker}",))
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("how", ["os", "exec"])
def test_a_pickle_that_runs_code_is_refused(tmp_path, capsys, how):
    # the payload is live: an ordinary unpickler runs it
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Payload(probe, how)))
    assert probe.exists()
    marker = tmp_path / "marker"
    db = _pyannot_db()
    # hidden where a box array should be
    next(iter(db.values()))["annotations"][0]["boxes"] = _Payload(marker, how)
    p = tmp_path / "pyannot.pkl"
    p.write_bytes(pickle.dumps(db, protocol=4))
    with pytest.raises(VidcamError, match="refused") as err:
        ground_truths(p, _videos("v_Biking_g01_c01.avi"))
    assert "\n" not in str(err.value) and ("system" in str(err.value) or "exec" in str(err.value))
    assert not marker.exists()
    # through the CLI: one line, exit 2, before any model loads, and still no marker
    rc = main(["evaluate", str(SAMPLES / "growing_1x.mp4"), "--gt", str(p), "--quiet"])
    err_text = capsys.readouterr().err
    assert rc == 2 and "refused" in err_text and "Traceback" not in err_text
    assert len(err_text.strip().splitlines()) == 1
    assert not marker.exists()


def test_codecs_encode_only_as_latin1():
    good = pickle.dumps({"b": b"\x00\xff"}, protocol=2)  # written as _codecs.encode(.., latin1)
    assert restricted_loads(good, "x") == {"b": b"\x00\xff"}
    evil = (
        b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcq\x01X\x04\x00\x00\x00zlibq\x02"
        b"\x86q\x03Rq\x04."
    )
    with pytest.raises(VidcamError, match="not a readable annotation pickle"):
        restricted_loads(evil, "x")


def test_bad_pickles_are_one_line(tmp_path, monkeypatch):
    cases = {
        "text.pkl": b"not a pickle at all",
        "cut.pkl": pickle.dumps(_pyannot_db(), protocol=4)[:-40],
        "list.pkl": pickle.dumps([1, 2, 3]),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(VidcamError) as err:
            ground_truths(tmp_path / name, _videos("v_Biking_g01_c01.avi"))
        assert "\n" not in str(err.value) and name in str(err.value)
    # boxes whose row count does not match sf..ef: names the key and the field
    db = _pyannot_db()
    next(iter(db.values()))["annotations"][0]["ef"] = 9
    (tmp_path / "rows.pkl").write_bytes(pickle.dumps(db))
    with pytest.raises(VidcamError, match=r"v_Biking_g01_c01.*annotations\[0\]\.boxes"):
        ground_truths(tmp_path / "rows.pkl", _videos("v_Biking_g01_c01.avi"))
    # no video matches any key
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps(_pyannot_db()))
    with pytest.raises(VidcamError, match="no video's file name matches"):
        ground_truths(tmp_path / "ok.pkl", _videos("unrelated.mp4"))
    # the size limit is checked before reading
    import vidcam.evaluate.gt_pickle as gp

    monkeypatch.setattr(gp, "MAX_PICKLE_BYTES", 100)
    with pytest.raises(VidcamError, match="over the limit"):
        ground_truths(tmp_path / "ok.pkl", _videos("v_Biking_g01_c01.avi"))


def test_a_huge_declared_array_is_refused_without_allocating():
    # an ndarray whose state declares 10^12 elements but carries 4 bytes
    arr = np.zeros(1, dtype=np.int32)
    data = pickle.dumps(arr, protocol=2).replace(b"K\x01\x85", b"\x8a\x05\x00\x10\xa5\xd4\xe8\x85")
    with pytest.raises(VidcamError, match="not a readable annotation pickle"):
        restricted_loads(data, "x")


# -- mask files ---------------------------------------------------------------------------------


def test_mask_file_reads_only_the_sampled_frames(tmp_path):
    masks = np.zeros((50, 24, 32), dtype=bool)
    masks[10:20, 4:8, 6:14] = True
    p = write_mask_gt(tmp_path / "v.npz", masks, label="waving", interval=(10, 20))
    g = read_mask_gt(p)
    assert g.label == "waving" and g.interval == (10, 20) and g.size == (24.0, 32.0)
    got = g.masks([12, 0, 60, 19])  # 60 is past the end: an empty mask
    assert np.array_equal(got[0], masks[12]) and not got[1].any() and not got[2].any()
    assert np.array_equal(got[3], masks[19])
    # on a clip's grid: the 24×32 annotation on a 48×64 source, resized to 24×32 and cropped
    geometry = Geometry(source=(48, 64), resized=(24, 32), crop=(24, 24), offset=(0, 4))
    clip = Clip(Path("v.mp4"), torch.zeros(1, 3, 2, 24, 24), (12, 30), geometry)
    truth = map_truth(g, clip)
    assert truth.boxes is None and truth.interval.tolist() == [True, False]
    assert torch.equal(truth.mask[0], torch.from_numpy(masks[12][:, 4:28]))
    assert not truth.mask[1].any()
    assert truth.px_per_unit == (1.0, 1.0)  # annotation grid = resized grid


def test_mask_without_interval_uses_the_frames_with_a_mask(tmp_path):
    masks = np.zeros((8, 10, 10), dtype=np.uint8)
    masks[3, 2:5, 2:5] = 1
    p = tmp_path / "m.npz"
    np.savez(p, masks=masks)
    g = read_mask_gt(p)
    assert g.label is None and g.interval is None
    geometry = Geometry(source=(10, 10), resized=(10, 10), crop=(10, 10), offset=(0, 0))
    clip = Clip(Path("m.mp4"), torch.zeros(1, 3, 3, 10, 10), (2, 3, 4), geometry)
    assert map_truth(g, clip).interval.tolist() == [False, True, False]


def test_bad_mask_files_are_one_line(tmp_path):
    def check(name: str, match: str, **arrays) -> None:
        p = tmp_path / name
        np.savez(p, **arrays)
        with pytest.raises(VidcamError, match=match) as err:
            read_mask_gt(p)
        assert "\n" not in str(err.value) and name in str(err.value)

    check("two.npz", "exactly one", a=np.zeros((2, 3, 3), bool), b=np.zeros((2, 3, 3), bool))
    check("flat.npz", "exactly one", a=np.zeros((3, 3), bool))
    check("float.npz", "bool or uint8", a=np.zeros((2, 3, 3), np.float32))
    check("label.npz", "'label'", a=np.zeros((2, 3, 3), bool), label=np.zeros(3))
    (tmp_path / "junk.npz").write_bytes(b"PK not really")
    with pytest.raises(VidcamError, match="not a readable .npz"):
        read_mask_gt(tmp_path / "junk.npz")
    # a header that declares 10^6 × 10^4 × 10^4 voxels: refused from the header alone
    header = {"descr": "|b1", "fortran_order": False, "shape": (10**6, 10**4, 10**4)}
    buf = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("masks.npy", buf.getvalue() + b"\x00" * 16)
    with pytest.raises(VidcamError, match="over the limit"):
        read_mask_gt(tmp_path / "huge.npz")
    # a file that ends before a sampled frame: one line when that frame is read
    header["shape"] = (100, 4, 4)
    buf = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(tmp_path / "short.npz", "w") as zf:
        zf.writestr("masks.npy", buf.getvalue() + b"\x01" * 32)
    g = read_mask_gt(tmp_path / "short.npz")
    assert g.masks([1]).all()
    with pytest.raises(VidcamError, match="ends before frame 50"):
        g.masks([50])


# -- the hardened JSON --------------------------------------------------------------------------


def _gt(**over) -> dict:
    doc = {"label": "growing", "interval": [2, 5], "boxes": [[], [], [[1, 2, 3, 4]]]}
    doc.update(over)
    return doc


@pytest.mark.parametrize(
    "doc, field",
    [
        (_gt(interval=None), "'interval'"),
        (_gt(interval=[5, 2]), r"'interval\[1\]'"),
        (_gt(interval=[0.5, 2]), r"'interval\[0\]'"),
        (_gt(width=0, height=10), "'width'"),
        (_gt(width=-3, height=10), "'width'"),
        (_gt(width=5), "both 'width' and 'height'"),
        (_gt(boxes=[[[1e999, 5, 6, 7]]]), r"'boxes\[0\]\[0\]\[0\]'"),
        (_gt(boxes=[[[1, 5]]]), r"'boxes\[0\]\[0\]'"),
        (_gt(boxes=[[[True, 5, 6, 7]]]), r"'boxes\[0\]\[0\]\[0\]'"),
        (_gt(boxes=[[[5, 5, 1, 7]]]), r"'boxes\[0\]\[0\]'"),
        (_gt(boxes={"0": []}), "'boxes'"),
        (_gt(boxes=[[[0, 0, 1, 1]] * 1001]), r"'boxes\[0\]'"),
        (_gt(label=None), "'label'"),
        ([1, 2], "must be a JSON object"),
        ({"label": "x", "boxes": []}, "lacks the field 'interval'"),
    ],
)
def test_json_schema_errors_name_the_file_and_field(tmp_path, doc, field):
    p = tmp_path / "clip.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(VidcamError, match=field) as err:
        load_gt(p)
    assert "\n" not in str(err.value) and "clip.json" in str(err.value)


def test_json_nesting_size_and_special_files(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(VidcamError, match="nested too deeply"):
        load_gt(deep)
    crowd = tmp_path / "crowd.json"  # 40 000 boxes in one frame: 30 MB, over the size limit
    crowd.write_text(json.dumps(_gt(boxes=[[[1.5, 2.5, 3.5, 4.5]] * 40_000] * 35)))
    with pytest.raises(VidcamError, match="over the limit"):
        load_gt(crowd)
    sparse = tmp_path / "sparse.json"  # 8 GiB that takes no disk: refused before reading
    with sparse.open("wb") as f:
        f.truncate(8 * 2**30)
    with pytest.raises(VidcamError, match="over the limit"):
        load_gt(sparse)
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(VidcamError, match="not readable JSON"):
        load_gt(tmp_path / "bad.json")
    with pytest.raises(VidcamError, match="not a regular file"):
        load_gt(tmp_path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "clip.json"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            load_gt(fifo)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(900)  # a hang guard only (the read must not block at all)
    if t.is_alive():  # unblock the reader so the process can exit, then fail
        with open(fifo, "w"):
            pass
        pytest.fail("reading a FIFO ground truth blocked")
    assert isinstance(outcome[0], VidcamError) and "not a regular file" in str(outcome[0])


def test_json_cases_through_the_cli_exit_2_with_one_line(tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes((SAMPLES / "growing_1x.mp4").read_bytes())
    for doc in (
        _gt(interval=None),
        _gt(width=0, height=3),
        '{"label": "x", "interval": [0, 1], "boxes": [[[1e999, 5, 6, 7]]]}',
    ):
        (tmp_path / "clip.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
        rc = main(["evaluate", str(video), "--quiet", "--device", "cpu"])
        err = capsys.readouterr().err
        assert rc == 2 and "clip.json" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_json_reads_back_the_synth_format():
    doc, g = read_json_gt(SAMPLES / "growing_1x.json")
    assert g.label == doc["label"] == "growing" and g.interval == tuple(doc["interval"])
    assert [list(map(list, f)) for f in g.boxes] == doc["boxes"]
    assert g.size == (doc["height"], doc["width"])


def test_folder_lookup_json_or_npz_and_ambiguity(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(_gt()))
    write_mask_gt(tmp_path / "b.npz", np.zeros((3, 4, 4), bool))
    a, b, c = ground_truths(tmp_path, _videos("a.mp4", "b.mp4", "c.mp4"))
    assert a.boxes is not None and b.masks is not None and c is None
    (tmp_path / "a.npz").write_bytes((tmp_path / "b.npz").read_bytes())
    with pytest.raises(VidcamError, match="both 'a.json' and 'a.npz'"):
        ground_truths(tmp_path, _videos("a.mp4"))
    with pytest.raises(VidcamError, match="one video's ground truth"):
        ground_truths(tmp_path / "b.npz", _videos("a.mp4", "b.mp4"))


def test_hostile_json_stays_within_a_memory_cap(tmp_path):
    """Under a 768 MiB address-space cap (a child process, numpy only): the 8 GiB sparse file,
    the issue's 30 MB file of 40 000 boxes per frame and an 11 MB one under the size limit are
    each refused with one line, without reading them whole or building their masks."""
    import subprocess
    import sys

    sparse = tmp_path / "sparse.json"
    with sparse.open("wb") as f:
        f.truncate(8 * 2**30)
    big = tmp_path / "big.json"
    big.write_text(json.dumps(_gt(boxes=[[[1.5, 2.5, 3.5, 4.5]] * 40_000] * 35)))
    small = tmp_path / "small.json"
    small.write_text(json.dumps(_gt(boxes=[[[1, 2, 3, 4]] * 40_000] * 20)))
    assert big.stat().st_size > 16 * 2**20 > small.stat().st_size
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (768 * 2**20, 768 * 2**20))\n"
        "from vidcam.errors import VidcamError\n"
        "from vidcam.evaluate.gt import load_gt\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        load_gt(p)\n"
        "        print('READ', p)\n"
        "    except VidcamError as exc:\n"
        "        print('REFUSED', str(exc).replace(chr(10), ' '))\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(sparse), str(big), str(small)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("REFUSED") for line in lines), lines
    assert "over the limit" in lines[0] and "over the limit" in lines[1]
    assert "'boxes[0]'" in lines[2] and "at most 1000 boxes" in lines[2]
