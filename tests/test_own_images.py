"""Your own images (gan/core/own_images.py): doodles on paper made MNIST-like, every kind of unusable input
refused with a message that says why, and a run trained end to end from a .zip through the CLI."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan.core.data import load_dataset
from gan.core.own_images import MIN_IMAGES, OwnImagesError, load_own_images, mnist_like

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    real = load_dataset("mnist5k").images[::25][:100]  # (100, 1, 28, 28) in [-1, 1], all ten classes
    return ((real.squeeze(1).numpy() + 1) * 127.5).round().astype(np.uint8)


def photographed(digit: np.ndarray, seed: int) -> bytes:
    """A digit as a phone photo of paper: dark ink on a light, slightly uneven page, large and off-centre."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(90, 140))
    ink = np.asarray(Image.fromarray(digit).resize((size // 2, size // 2), Image.BILINEAR), np.float32)
    page = np.full((size, size), 235.0) + rng.normal(0, 4, (size, size))  # paper with a little grain
    top, left = rng.integers(0, size // 2, 2)
    page[top:top + size // 2, left:left + size // 2] -= ink * 0.8  # pencil: dark, not black
    buf = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).convert("RGB").save(buf, "JPEG" if seed % 2 else "PNG")
    return buf.getvalue()


def write_zip(path: Path, digits, n: int, extra: dict | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for i in range(n):
            z.writestr(f"doodles/{i:03d}.{'jpg' if i % 2 else 'png'}", photographed(digits[i % len(digits)], i))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def test_photographed_digits_come_out_like_mnist(digits):
    for i in range(6):
        gray = np.asarray(Image.open(io.BytesIO(photographed(digits[i], i))).convert("L"), np.float32) / 255
        image, inverted = mnist_like(gray)
        assert inverted and image.shape == (28, 28) and image.dtype == np.uint8
        ys, xs = np.indices(image.shape)
        mass = image.astype(np.float64).sum()
        assert abs((ys * image).sum() / mass - 13.5) <= 1 and abs((xs * image).sum() / mass - 13.5) <= 1  # centred
        ink = np.argwhere(image > 50)
        assert (ink.max(0) - ink.min(0)).max() <= 21  # fitted in ~20 px, as MNIST
        assert image[:2].max() == 0 and image[:, :2].max() == 0  # the paper around it is gone
        # It resembles the digit it was drawn from (correlation with the MNIST original, re-centred).
        original, _ = mnist_like(digits[i].astype(np.float32) / 255)
        assert np.corrcoef(image.ravel(), original.ravel())[0, 1] > 0.6


def test_a_zip_of_doodles_loads_and_counts_what_it_skipped(tmp_path, digits):
    path = write_zip(tmp_path / "doodles.zip", digits, 80, {"notes.txt": b"hello", "doodles/broken.png": b"\x89PNG no"})
    own = load_own_images(path)
    assert own.images.shape == (80, 28, 28) and own.inverted == 80
    assert own.skipped_other == ["notes.txt"] and own.skipped_corrupt == ["doodles/broken.png"]
    assert own.summary() == (f"80 images from {path}; 80 inverted (light background); 1 corrupt file skipped; "
                             "1 file that is not PNG/JPEG skipped")


def test_a_folder_npz_and_idx_load_too(tmp_path, digits):
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(70):
        (folder / f"{i}.png").write_bytes(photographed(digits[i], 2 * i))
    assert load_own_images(folder).images.shape == (70, 28, 28)
    np.savez(tmp_path / "a.npz", images=digits.reshape(100, 784) / 255.0)  # floats in [0, 1], flattened
    assert np.array_equal(load_own_images(tmp_path / "a.npz").images, digits)  # MNIST-like already: unchanged
    idx = tmp_path / "train-images-idx3-ubyte"
    idx.write_bytes(bytes.fromhex("00000803") + np.array([100, 28, 28], ">u4").tobytes() + digits.tobytes())
    assert np.array_equal(load_own_images(idx).images, digits)


@pytest.mark.parametrize("case", ["too_few", "traversal", "backslash", "absolute", "bomb", "not_zip", "one_image",
                                  "missing", "truncated_idx", "bad_npz", "nan_npz", "wrong_shape"])
def test_unusable_input_is_refused_with_the_reason(tmp_path, digits, case):
    p = tmp_path / "x.zip"
    if case == "too_few":
        write_zip(p, digits, 10, {"a.txt": b"x"})
        expect = f"10 usable images, at least {MIN_IMAGES} are needed"
    elif case in ("traversal", "backslash", "absolute"):
        # backslash: a zip made on Windows names folders with "\\"; Python keeps that name as it is on Linux
        name = {"traversal": "../../etc/evil.png", "backslash": "..\\..\\evil.png", "absolute": "/tmp/evil.png"}[case]
        write_zip(p, digits, 70, {name: photographed(digits[0], 0)})
        expect = f"the entry {name!r} points outside the archive"
    elif case == "bomb":
        with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("big.png", b"\0" * (60 * 2**20))  # 60 MB of zeros pack to ~60 kB
        expect = "a zip bomb?"
    elif case == "not_zip":
        p.write_bytes(b"not a zip at all")
        expect = "not a readable zip"
    elif case == "one_image":
        p = tmp_path / "one.png"
        p.write_bytes(photographed(digits[0], 0))
        expect = "is one image: give a folder or a .zip"
    elif case == "missing":
        p = tmp_path / "nowhere"
        expect = "no such file or folder"
    elif case == "truncated_idx":
        p = tmp_path / "t-images-idx3-ubyte"
        p.write_bytes(bytes.fromhex("00000803") + np.array([100, 28, 28], ">u4").tobytes() + digits.tobytes()[:500])
        expect = "truncated or inconsistent IDX file"
    elif case == "bad_npz":
        p = tmp_path / "b.npz"
        p.write_bytes(b"PK\x03\x04 broken")
        expect = "not a readable .npz"
    elif case == "nan_npz":
        p = tmp_path / "n.npz"
        np.savez(p, images=np.full((70, 28, 28), np.nan))
        expect = "NaN or infinite"
    else:
        p = tmp_path / "w.npz"
        np.savez(p, images=np.zeros((70, 5)))
        expect = "expected images of shape (N, H, W) or (N, 784)"
    with pytest.raises(OwnImagesError) as err:
        load_own_images(p)
    assert expect in str(err.value)


def test_a_run_trains_end_to_end_from_a_zip_through_the_cli(tmp_path, digits):
    path = write_zip(tmp_path / "doodles.zip", digits, 96)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "gan", "train", "--data", str(path), "--model", "mlp", "--width", "32",
                           "--steps", "150", "--threads", "1", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["dataset"] == "own" and summary["steps"] == 150
    assert (out / "samples.png").exists() and (out / "checkpoint.pt").exists()


def test_a_bad_data_path_is_one_line_and_exit_status_2(tmp_path, capsys):
    from gan.tools.cli import main

    assert main(["train", "--data", str(tmp_path / "nowhere.zip"), "--steps", "5", "--threads", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'nowhere.zip'}: no such file or folder" in err and "Traceback" not in err
    assert not (tmp_path / "bad" / "checkpoint.pt").exists()


def test_the_quality_panel_shows_fd_against_your_images_and_says_why_there_is_no_score(tmp_path, digits):
    from gan.core.config import Config, ConfigError
    from gan.engine.status import RunState
    from gan.engine.trainer import Trainer
    from gan.quality.monitor import MetricsMonitor
    from gan.viz.qualityview import QualityView

    with pytest.raises(ConfigError) as err:
        Config(dataset="own")
    assert err.value.field == "data_path" and "--data PATH" in str(err.value)
    path = write_zip(tmp_path / "doodles.zip", digits, 70)
    trainer = Trainer(Config(dataset="own", data_path=str(path), model="mlp", width=16, batch_size=16,
                             latent_dim=8, device="cpu"), name="own")
    monitor = MetricsMonitor(trainer, every=10, poll_s=0.01, n_samples=200).start()
    try:
        trainer.start(paused=True)
        assert trainer.wait_until(lambda t: t.state == RunState.PAUSED, timeout=60), trainer.status()
        assert trainer.status().dataset_source.startswith(f"70 images from {path}; 70 inverted")
        assert monitor.wait_for_evaluations(1, timeout=120), monitor.snapshot().message
        snap = monitor.snapshot()
        assert snap.info["own_images"] and snap.info["images"] == 70 and snap.judge is None
        # An untrained G's noise is far from your images; your own held-out half is close to the other half.
        assert snap.latest.fd > 5 * snap.ceiling.fd
        frame = QualityView().frame("own", monitor)
        assert frame.title == "Quality of your images' GAN: Fréchet distance against them" and not frame.failed
        assert frame.message.startswith(f"Fréchet distance {snap.latest.fd:.1f} at step 0 against your 70 images")
        assert "does not apply to your images, so there is no score" in frame.message
        payload = json.loads(frame.charts)
        assert list(payload["specs"]) == ["fd"] and payload["rows"][0][0]["chart"] == "fd"
    finally:
        monitor.stop()
        trainer.stop()


def test_the_train_page_upload_keeps_good_images_with_a_preview_and_refuses_the_rest(tmp_path, digits, monkeypatch):
    from gan.workshop.controller import TrainController
    from gan.workshop.form import config_from_form, form_from_config

    monkeypatch.setenv("GAN_LIVE_RUNS_DIR", str(tmp_path / "runs"))
    ctl = TrainController(None, None)

    def upload(path: Path, name: str | None = None):
        buf = io.BytesIO(path.read_bytes())
        buf.name = name or path.name
        return buf

    good = ctl.use_own_images(upload(write_zip(tmp_path / "class.zip", digits, 70, {"readme.txt": b"x"})))
    assert good.notice.ok and Path(good.path).is_file() and Path(good.path).parent == tmp_path / "runs" / "uploads"
    assert good.summary == ("70 images from class.zip; 70 inverted (light background); "
                            "1 file that is not PNG/JPEG skipped")
    preview = Image.open(io.BytesIO(good.preview_png))
    assert preview.size == (484, 484)  # 8 x 8 cells of 28 px at scale 2, with their padding
    # The form carries the saved path to the next Start.
    config = config_from_form({**form_from_config(ctl.base), "dataset": "own", "data_path": good.path})
    assert (config.dataset, config.data_path) == ("own", good.path)

    evil = write_zip(tmp_path / "evil.zip", digits, 70, {"../../x.png": photographed(digits[0], 0)})
    bad = ctl.use_own_images(upload(evil))
    assert not bad.notice.ok and "the entry '../../x.png' points outside the archive" in bad.notice.text
    assert str(tmp_path) not in bad.notice.text  # the message names the upload, not the server's folders
    assert sorted(p.name for p in (tmp_path / "runs" / "uploads").iterdir()) == [Path(good.path).name]  # not kept
    assert "give a .zip of PNG/JPEG images" in ctl.use_own_images(upload(evil, "photo.png")).notice.text
    assert "over the upload limit of 0 MB" in ctl.use_own_images(upload(evil), max_bytes=100).notice.text


def test_the_train_page_uploader_previews_your_images_and_refuses_a_backslash_escape(tmp_path, digits, app_registry,
                                                                                     monkeypatch):
    """The uploader on the Train page itself (AppTest): a good .zip gives the preview and the path the next Start
    trains on; a zip made on Windows whose entry climbs out with backslashes is refused beside the field, nothing
    of it is kept, and the earlier upload is no longer used (the uploader names the refused one)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("GAN_LIVE_TOKEN", raising=False)
    uploads = Path(os.environ["GAN_LIVE_RUNS_DIR"]) / "uploads"
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60)
    at.run()
    at.selectbox(key="dataset").set_value("own")
    at.run()
    good = write_zip(tmp_path / "class.zip", digits, 70).read_bytes()
    at.file_uploader(key="own_upload").set_value(("class.zip", good, "application/zip"))
    at.run()
    assert not at.exception and not at.sidebar.error, [e.value for e in at.sidebar.error]
    kept = sorted(uploads.iterdir())
    assert len(kept) == 1 and at.session_state["data_path"] == str(kept[0])
    captions = [i.proto.imgs[0].caption for i in at.sidebar.get("image")]
    assert captions == ["64 of your images as the GAN sees them. 70 images from class.zip; 70 inverted "
                        "(light background)."], captions

    evil = write_zip(tmp_path / "evil.zip", digits, 70, {"..\\..\\x.png": photographed(digits[0], 0)}).read_bytes()
    at.file_uploader(key="own_upload").set_value(("evil.zip", evil, "application/zip"))
    at.run()
    assert not at.exception
    beside = [e.value for e in at.sidebar.error]
    assert any("refused, the entry '..\\\\..\\\\x.png' points outside the archive" in e for e in beside), beside
    assert sorted(uploads.iterdir()) == kept  # nothing of it kept
    # The uploader names the refused file now: no preview of the earlier one, and Start does not train on it
    assert at.session_state["data_path"] == "" and not at.sidebar.get("image")
    at.button(key="start").click()
    at.run()
    assert app_registry.current() is None, "Start trained on an earlier upload the uploader no longer shows"
    assert [e.value for e in at.sidebar.error], "the refusal beside the field went away"

