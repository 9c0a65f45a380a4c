"""Nothing reads files it was not given (issue 30, item 0).

A server once read its own working folder as a dataset: on a run trained on uploaded images, a viewer turned on
the Samples page's classifier labels and the classifier was looked up by the dataset's NAME with a default config,
whose empty data path is "." to pathlib, so it scanned the app's checkout ("The reference classifier is not
available: .: 17 usable images, ..."). Here the process's working folder is full of images that WOULD load as
"your images" (so a scan of it succeeds silently instead of failing loudly), and every page is opened on a run
trained on an upload kept elsewhere: only the upload may ever be read.
"""

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from gan.core import data, own_images
from gan.core.config import Config
from gan.core.data import DataUnavailable, load_dataset
from gan.core.own_images import OwnImagesError, load_own_images
from gan.engine.trainer import cached_dataset
from gan.workshop import controller

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 120  # well over own_images.MIN_IMAGES: the working folder is a usable dataset, were it ever read
PAGES = ("train", "samples", "compare", "theory")


def png(rng: np.random.Generator) -> bytes:
    """A white bar on black, somewhere: an image own_images accepts (it has ink to crop and centre)."""
    a = np.zeros((28, 28), np.uint8)
    top, left = rng.integers(2, 14, 2)
    a[top:top + int(rng.integers(6, 14)), left:left + int(rng.integers(3, 12))] = 255
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def image_folder(tmp_path, monkeypatch):
    """The process's working folder for the test: IMAGES PNGs (as a checkout of the app holds images too)."""
    folder = tmp_path / "working-folder"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(IMAGES):
        (folder / f"{i:03d}.png").write_bytes(png(rng))
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def reads(monkeypatch):
    """Every path given to the own-images loader, in order, by either of its two callers (the dataset loader and
    the Train page's upload check, each of which imports it at the top of its module)."""
    given = []
    real = own_images.load_own_images

    def spy(path):
        given.append(path)
        return real(path)

    callers = {str(f.relative_to(ROOT)) for f in (ROOT / "gan").rglob("*.py")
               if "import" in f.read_text() and "load_own_images" in f.read_text() and f.name != "own_images.py"}
    assert callers == {"gan/core/data.py", "gan/workshop/controller.py"}, callers  # a new caller: spy on it too
    for caller in (data, controller):
        assert caller.load_own_images is real
        monkeypatch.setattr(caller, "load_own_images", spy)
    return given


def test_a_missing_path_is_refused_never_read_as_the_working_folder(image_folder):
    for missing in ("", "   ", None):
        with pytest.raises(OwnImagesError, match="no path given for your images"):
            load_own_images(missing)
    assert len(load_own_images(image_folder).images) == IMAGES  # the folder loads when it IS given
    # The dataset loaders' defaults ("" for the data path) reach the same refusal, with the typed error.
    with pytest.raises(DataUnavailable, match="no path given for your images"):
        load_dataset("own")
    with pytest.raises(DataUnavailable, match="no path given for your images"):
        cached_dataset("own", Config().data_dir, "cpu")


def upload(tmp_path: Path) -> Path:
    """Your images as the Train page keeps an upload: a .zip away from the working folder."""
    rng = np.random.default_rng(1)
    path = tmp_path / "uploads" / "doodles.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as z:
        for i in range(80):
            z.writestr(f"doodles/{i:02d}.png", png(rng))
    return path


def shown(at: AppTest) -> list[str]:
    """Every message a viewer reads on the page: alerts, captions, markdown, exceptions."""
    out = []
    for kind in ("error", "warning", "info", "success", "caption", "markdown", "exception"):
        out += [str(e.value) for e in at.get(kind)]
    return out


def test_no_page_reads_the_servers_working_folder_on_a_run_of_your_images(app_registry, image_folder, tmp_path,
                                                                          reads, monkeypatch):
    monkeypatch.delenv("GAN_LIVE_TOKEN", raising=False)
    zipped = upload(tmp_path)
    trainer = app_registry.start(Config(dataset="own", data_path=str(zipped), model="mlp", width=16, batch_size=16,
                                        latent_dim=8, sample_every=5))
    assert trainer.wait_until(lambda t: t.step_count >= 6 or t.state == "failed", timeout=60), trainer.status()
    trainer.pause("test")
    assert trainer.status().dataset_source.startswith(f"80 images from {zipped}"), trainer.status()
    for name in PAGES:  # as a viewer: everything that page does by itself
        at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60).run()
        assert not at.exception, (name, at.exception)
        if name == "samples":
            if any(t.key == "label_cells" for t in at.toggle):  # turn the classifier labels on where offered
                at.toggle(key="label_cells").set_value(True)
                at.run()
            assert not at.exception and not at.error, [e.value for e in at.error]
            assert any("Your images have no classes" in c.value for c in at.caption), shown(at)
        said = shown(at)
        assert not [s for s in said if str(image_folder) in s or ".: " in s], (name, said)
    # The run's own upload, and nothing else, was ever read as your images.
    assert reads and {str(p) for p in reads} == {str(zipped)}, reads
    assert os.getcwd() == str(image_folder)  # the pages ran where the images lie


def test_the_classifier_labels_of_a_built_in_set_come_from_the_runs_dataset(app_registry, image_folder, reads,
                                                                           monkeypatch):
    monkeypatch.delenv("GAN_LIVE_TOKEN", raising=False)
    trainer = app_registry.start(Config(batch_size=16, latent_dim=8, sample_every=5))
    assert trainer.wait_until(lambda t: t.step_count >= 6 or t.state == "failed", timeout=60), trainer.status()
    trainer.pause("test")
    at = AppTest.from_file(str(ROOT / "pages" / "samples.py"), default_timeout=120).run()
    at.toggle(key="label_cells").set_value(True)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.table[0].value.shape == (8, 8)  # the labels, from the classifier of the run's mnist5k
    assert reads == []  # a built-in set never touches the own-images loader
