"""Decode pipeline, camera driver (real OpenCV on real files), capture service, vault and CLI."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp

from agent.drivers.camera import CameraError, capture_until, open_camera
from agent.idcard.cli import main as cli_main
from agent.idcard.config import IdCardSettings
from agent.idcard.errors import CaptureError, IdCardError
from agent.idcard.parsers import parse_any
from agent.idcard.pipeline import DecodePipeline
from agent.idcard.service import IdCardService
from agent.idcard.synthetic_frames import make_frame
from agent.idcard.vault import ImageVault
from tests.fakes.camera import FakeCamera

EASY = dict(tilt=0.02, light=0.9, glare=0, blur=0.4, noise=2, quality=90, module=3.0)


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> dict[str, object]:
    """A rotated Colombian cedula, a level Chilean QR, an empty card and a product EAN-13, on disk."""
    directory = tmp_path_factory.mktemp("frames")
    made = {"co_rotated": make_frame(random.Random(1), "co_cedula", angle=33, **EASY),
            "cl_qr": make_frame(random.Random(2), "cl_qr", angle=0, **EASY),
            "no_code": make_frame(random.Random(3), "no_code", angle=10, **EASY),
            "ean13": make_frame(random.Random(4), "ean13", angle=0, **EASY)}
    out: dict[str, object] = {}
    for name, frame in made.items():
        path = directory / f"{name}.jpg"
        path.write_bytes(frame.jpeg)
        out[name] = frame
        out[name + "_path"] = path
    return out


def _gray(frame) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)


def _accept(data: bytes, symbology: str) -> bool:
    try:
        parse_any(data, symbology)
        return True
    except IdCardError:
        return False


def test_pipeline_reads_a_rotated_pdf417_that_raw_zxing_misses(frames) -> None:
    gray = _gray(frames["co_rotated"])
    assert not any(bytes(r.bytes) == frames["co_rotated"].payload for r in zxingcpp.read_barcodes(gray))
    found = DecodePipeline().decode(gray, _accept)
    assert found is not None and found.format == "PDF417" and found.data == frames["co_rotated"].payload
    assert found.stage.startswith("candidate")


def test_pipeline_returns_raw_bytes_with_nuls(frames) -> None:
    found = DecodePipeline().decode(_gray(frames["co_rotated"]), _accept)
    assert found is not None and b"\x00" in found.data and len(found.data) == 531


def test_pipeline_without_accept_returns_any_symbol_and_with_accept_skips_foreign_codes(frames) -> None:
    gray = _gray(frames["ean13"])
    assert DecodePipeline().decode(gray, _accept) is None
    assert DecodePipeline().decode(_gray(frames["no_code"]), None) is None


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 5, (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def _bgr(frame) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)


def test_camera_driver_replays_an_mjpg_video_and_the_loop_stops_at_the_first_read(frames, tmp_path) -> None:
    video = tmp_path / "capture.avi"
    _write_video(video, [_bgr(frames["no_code"]), _bgr(frames["ean13"]), _bgr(frames["cl_qr"]),
                         _bgr(frames["no_code"])])
    pipeline = DecodePipeline()
    with open_camera(str(video)) as camera:
        result, tried = capture_until(camera, lambda f: pipeline.decode(f, _accept), timeout_s=30)
    assert result is not None and result.format == "QRCode" and tried == 3
    assert parse_any(result.data, result.format).country == "CL"


def test_camera_driver_reads_an_image_sequence_and_ends(frames, tmp_path) -> None:
    for i, name in enumerate(["no_code", "ean13"]):
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), _bgr(frames[name]))
    camera = open_camera(str(tmp_path / "f%03d.png"))
    result, tried = capture_until(camera, lambda f: None, timeout_s=30)
    camera.close()
    assert result is None and tried == 2


def test_capture_loop_times_out_on_an_endless_source_without_code(frames) -> None:
    ticks = iter(range(1000))
    camera = FakeCamera([frames["no_code_path"]], loop=True)
    result, tried = capture_until(camera, lambda f: None, timeout_s=5, clock=lambda: float(next(ticks)))
    assert result is None and tried == 4


def test_camera_driver_refuses_missing_sources(tmp_path) -> None:
    with pytest.raises(CameraError):
        open_camera(str(tmp_path / "nope.avi"))
    with pytest.raises(CameraError):
        open_camera("/dev/video99")


def _service(tmp_path: Path, camera_frames: list, **settings) -> IdCardService:
    config = IdCardSettings(capture_timeout_s=30, image_dir=str(tmp_path / "img"), **settings)
    vault = ImageVault(tmp_path / "img", bytes(range(32)))
    return IdCardService(config, vault, lambda: FakeCamera(camera_frames))


def test_service_reads_the_document_then_stores_encrypted_photos(frames, tmp_path) -> None:
    corrupt = b"\xff\xd8\xff\xe0 not really a jpeg"
    service = _service(tmp_path, [corrupt, frames["ean13_path"], frames["co_rotated_path"]])
    capture = service.start_capture()
    session = service.read_document(capture)
    assert session.status == "read" and session.symbology == "PDF417"
    assert session.document == parse_any(frames["co_rotated"].payload, "PDF417")
    photo = _bgr(frames["co_rotated"])
    report = service.capture_image(capture, "back", photo)
    assert report.ok
    image_id = service.result(capture).image_ids["back"]
    stored = (tmp_path / "img" / f"{image_id}.bin").read_bytes()
    assert frames["co_rotated"].jpeg[:64] not in stored and b"JFIF" not in stored
    jpeg = service.vault.get(capture, "back", image_id)
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == photo.shape
    with pytest.raises(CaptureError):  # the associated data binds capture and side
        service.vault.get(capture, "front", image_id)
    result = service.result(capture).to_dict()
    assert result["document"]["document_number"] == session.document.document_number
    assert set(result) == {"capture_id", "status", "message", "document", "format", "image_ids", "warnings"}


def test_service_asks_for_a_retake_on_blur_and_glare_and_stores_nothing(frames, tmp_path) -> None:
    service = _service(tmp_path, [])
    capture = service.start_capture()
    photo = _bgr(frames["co_rotated"])
    with pytest.raises(CaptureError) as blurry:
        service.capture_image(capture, "front", cv2.GaussianBlur(photo, (0, 0), 6))
    assert blurry.value.code == "retake_needed" and "blurry" in blurry.value.message_en
    glare = photo.copy()
    cv2.circle(glare, (960, 540), 250, (255, 255, 255), -1)
    with pytest.raises(CaptureError) as shiny:
        service.capture_image(capture, "front", glare)
    assert "glare" in shiny.value.message_en and "reflejo" in shiny.value.message_es
    assert service.result(capture).image_ids == {} and not list((tmp_path / "img").glob("*.bin"))


def test_service_reports_no_barcode_and_unknown_captures(frames, tmp_path) -> None:
    service = _service(tmp_path, [frames["no_code_path"], frames["ean13_path"]])
    capture = service.start_capture()
    session = service.read_document(capture)
    assert session.status == "no_barcode" and session.document is None and session.warnings
    with pytest.raises(CaptureError) as err:
        service.result("nope")
    assert err.value.code == "unknown_capture" and err.value.status == 404


def test_retention_deletes_old_images_and_discard_deletes_a_captures_images(frames, tmp_path) -> None:
    service = _service(tmp_path, [], image_retention_days=1)
    photo = _bgr(frames["co_rotated"])
    first, second = service.start_capture(), service.start_capture()
    service.capture_image(first, "front", photo)
    service.capture_image(second, "front", photo)
    old = tmp_path / "img" / f"{service.result(first).image_ids['front']}.bin"
    import os
    os.utime(old, (0, 0))
    assert service.purge_expired_images() == 1 and not old.exists()
    service.discard(second)
    assert not list((tmp_path / "img").glob("*.bin"))


def test_cli_decode_json_one_line_per_file(frames, tmp_path, capsys) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(frames["cl_qr"].jpeg[:2000])
    files = [frames["co_rotated_path"], frames["no_code_path"], corrupt, frames["ean13_path"]]
    status = cli_main(["idcard", "decode", "--json", *map(str, files)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1 and len(lines) == 4
    assert set(lines[0]) == {"file", "ok", "format", "document", "warnings", "ms"}
    assert lines[0]["ok"] and lines[0]["format"] == "PDF417"
    assert lines[0]["document"] == parse_any(frames["co_rotated"].payload, "PDF417").to_dict()
    for line in lines[1:]:
        assert line["ok"] is False and "document" not in line and line["warnings"]
    assert lines[3]["warnings"] == ["no_barcode_found"]  # an EAN-13 is not even tried as a document


def test_cli_runs_as_a_process_and_keeps_accents(frames) -> None:
    proc = subprocess.run([sys.executable, "-m", "agent.idcard.cli", "idcard", "decode", "--json",
                           str(frames["co_rotated_path"])], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    person = frames["co_rotated"].person
    assert record["document"]["first_surname"] == person.first_surname


def _pdf417_image(module: int = 4) -> np.ndarray:
    barcode = zxingcpp.create_barcode(b"1234567890" * 8, zxingcpp.BarcodeFormat.PDF417)
    symbol = np.array(zxingcpp.write_barcode_to_image(barcode))
    return cv2.resize(symbol, None, fx=module, fy=module, interpolation=cv2.INTER_NEAREST)


@pytest.mark.parametrize("name", ["wiener", "wiener_separable"])
def test_wiener_undoes_a_gaussian_blur_of_the_spec_sigma(name: str) -> None:
    from agent.idcard import deblur

    sharp = _pdf417_image()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    restored = getattr(deblur, name)(blurred, 2.5)
    error = lambda image: float(np.abs(image.astype(np.float32) - sharp).mean())  # noqa: E731
    assert error(restored) < 0.6 * error(blurred)


def test_flatten_glare_removes_an_additive_highlight_and_keeps_the_bars() -> None:
    from agent.idcard.crop_variants import flatten_glare

    symbol = _pdf417_image().astype(np.float32) * 0.6 + 40  # printed: paper ~193, ink ~40
    spot = np.zeros_like(symbol)
    cv2.circle(spot, (symbol.shape[1] // 2, symbol.shape[0] // 2), symbol.shape[0] // 3, 1.0, -1)
    glared = np.clip(symbol + cv2.GaussianBlur(spot, (0, 0), 15) * 150, 0, 255).astype(np.uint8)
    flat = flatten_glare(glared, 32)
    dark = symbol < 100
    centre = spot > 0.5
    # Under the highlight, bars and paper are far apart again, as they are outside it.
    assert flat[centre & ~dark].mean() - flat[centre & dark].mean() > 120
    assert glared[centre & dark].mean() > 150  # the highlight did wash the bars out


def test_a_qr_whose_blob_stops_short_of_its_edge_is_read_from_the_wide_crop() -> None:
    """Under blur or glare the edge-density blob can end a few modules inside the symbol: the
    tight crop then cuts finder patterns off, the wide crop keeps them and the quiet zone."""
    from agent.idcard.pipeline import DecodePipeline, PipelineSettings, rectify

    barcode = zxingcpp.create_barcode(b"https://portal.sidiv.registrocivil.cl/docstatus?RUN=12345678-5&type=CEDULA"
                                      b"&serial=123456789&mrz=123456789", zxingcpp.BarcodeFormat.QRCode)
    symbol = cv2.resize(np.array(zxingcpp.write_barcode_to_image(barcode)), None, fx=3, fy=3,
                        interpolation=cv2.INTER_NEAREST)
    frame = np.full((600, 800), 90, np.uint8)
    h, w = symbol.shape
    frame[100:100 + h, 200:200 + w] = symbol
    inset = 4 * 3 + 5 * 3  # the writer's 4-module quiet zone, then 5 modules into the symbol
    quad = np.float32([[200 + inset, 100 + inset], [200 + w - inset, 100 + inset],
                       [200 + w - inset, 100 + h - inset], [200 + inset, 100 + h - inset]])
    settings = PipelineSettings()
    read = lambda image: zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode,  # noqa: E731
                                                try_downscale=False)
    assert not read(rectify(frame, quad, settings))
    assert read(rectify(frame, quad, settings, margin=(0.4, 0.4)))
    names = [name for name, *_ in DecodePipeline(settings)._variants(frame, quad)]
    assert names[0] == "plain" and "wide" in names[:settings.rounds[0]]  # in the first round over the candidates
