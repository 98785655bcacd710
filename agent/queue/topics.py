"""The MQTT topic tree shared with head office (docs/head-office.md is the contract).

    loyalty/v1/stations/{station}/events          station -> HO  event batches (QoS 1)
    loyalty/v1/stations/{station}/acks            HO -> station  {"event_ids": [...]} (QoS 1)
    loyalty/v1/stations/{station}/availability    station -> HO  online/offline, retained, Last Will
    loyalty/v1/stations/{station}/status          station -> HO  sync status, retained
    loyalty/v1/stations/{station}/alerts          station -> HO  operational alerts (QoS 1)
    loyalty/v1/stations/{station}/replay          HO -> station  ask for events again by seq range
    loyalty/v1/stations/{station}/replay/result   station -> HO  what the replay could reopen
    loyalty/v1/stations/{station}/config/{kind}   HO -> station  configuration (retained / QoS 1)
    loyalty/v1/stations/{station}/config/errors   station -> HO  rejected configuration
    loyalty/v1/hub/consumers                      HO -> stations a head-office consumer joined or was lost
"""
from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "loyalty/v1/stations"
# One topic for the whole chain: a hub worker publishes "online" once its shared subscription
# is granted, and its Last Will (or its clean stop) "offline". Not retained: only a change seen
# live means that something sent before it may have gone nowhere (docs/head-office.md).
HUB_CONSUMERS = "loyalty/v1/hub/consumers"
# A station id becomes a topic level: no wildcards, separators or control characters.
_STATION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class StationTopics:
    station_id: str

    def __post_init__(self) -> None:
        if not _STATION.match(self.station_id):
            raise ValueError(f"station id {self.station_id!r} cannot be used in MQTT topics")

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.station_id}"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def acks(self) -> str:
        return f"{self.base}/acks"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def alerts(self) -> str:
        return f"{self.base}/alerts"

    @property
    def replay(self) -> str:
        return f"{self.base}/replay"

    @property
    def replay_result(self) -> str:
        return f"{self.base}/replay/result"

    @property
    def config_errors(self) -> str:
        return f"{self.base}/config/errors"

    def config(self, kind: str) -> str:
        return f"{self.base}/config/{kind}"

    def config_kind(self, topic: str) -> str | None:
        """``.../config/earning_rules`` -> ``earning_rules``; None for anything else.

        >>> StationTopics("st-1").config_kind("loyalty/v1/stations/st-1/config/pin_bundle")
        'pin_bundle'
        >>> StationTopics("st-1").config_kind("loyalty/v1/stations/st-1/config/errors") is None
        True
        """
        prefix = f"{self.base}/config/"
        if not topic.startswith(prefix):
            return None
        kind = topic[len(prefix):]
        return kind if kind and kind != "errors" and "/" not in kind else None
