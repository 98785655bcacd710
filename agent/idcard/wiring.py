"""Build the ID-card capture service for the running agent (real camera or simulated)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.idcard.config import IdCardSettings
from agent.lifecycle import Part

if TYPE_CHECKING:
    from agent.idcard.service import IdCardService
    from agent.idcard.vault import ImageVault
    from agent.store.db import Database


class LazyIdCardService(Part):
    """Builds the capture service on first use: OpenCV and zxing cost ~40 MB of RAM, which an
    idle agent should not pay until an attendant actually puts a card under the camera."""

    def __init__(self, settings: IdCardSettings, data_dir: Path, key_dir: Path, *, simulated: bool,
                 db: Database | None = None) -> None:
        self._args = (settings, data_dir, key_dir, simulated)
        self._db = db  # where customers' photo links live (agent/idcard/photos.py)
        self._service: IdCardService | None = None
        self._lock = threading.Lock()

    def _get(self) -> "IdCardService":
        with self._lock:
            if self._service is None:
                settings, data_dir, key_dir, simulated = self._args
                self._service = build_idcard_service(settings, data_dir, key_dir, simulated=simulated)
            return self._service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def health(self) -> dict[str, Any]:
        return {"state": "ok", "loaded": self._service is not None, "simulated": self._args[3]}

    # Defined here, not forwarded by __getattr__: health and metrics must not load OpenCV.
    @property
    def simulated(self) -> bool:
        return bool(self._args[3])

    @property
    def camera_source(self) -> str:
        return self._args[0].camera

    def loaded_service(self) -> "IdCardService | None":
        return self._service

    def service(self) -> "IdCardService":
        """The capture service, built now if it was not yet (loads OpenCV)."""
        return self._get()

    def vault(self) -> "ImageVault":
        """The encrypted image store, without loading OpenCV (reading a customer's photo needs no camera)."""
        from agent.idcard.vault import ImageVault
        from agent.keys import load_or_create_key

        settings, data_dir, key_dir, _ = self._args
        return ImageVault(Path(data_dir) / settings.image_dir, load_or_create_key(key_dir, settings.key_name))

    def maintenance(self) -> None:
        # Purge expired images even if no capture ran since the restart, without loading OpenCV;
        # the customers' links to purged photos go with them.
        vault = self.vault()
        vault.purge_older_than(self._args[0].image_retention_days * 86400)
        if self._db is not None:
            from agent.idcard.photos import forget_missing

            self._db.write(lambda c: forget_missing(c, vault.exists))


def build_idcard_service(settings: IdCardSettings, data_dir: Path, key_dir: Path, *, simulated: bool) -> "IdCardService":
    from agent.drivers.camera import CameraSettings, FrameSource, open_camera
    from agent.idcard.service import IdCardService
    from agent.idcard.vault import ImageVault
    from agent.keys import load_or_create_key

    vault = ImageVault(Path(data_dir) / settings.image_dir, load_or_create_key(key_dir, settings.key_name))

    def camera() -> "FrameSource":
        if simulated:
            from agent.simulators.camera import SimulatedCamera

            return SimulatedCamera()
        source: str | int = int(settings.camera) if settings.camera.isdigit() else settings.camera
        return open_camera(source, CameraSettings(width=settings.width, height=settings.height, fps=settings.fps,
                                                  autofocus=settings.autofocus))

    return IdCardService(settings, vault, camera)
