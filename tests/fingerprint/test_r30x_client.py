"""The command client talking to the fake sensor over a real pty through pyserial."""
from __future__ import annotations

import pytest

from agent.drivers.r30x.commands import LedColor, LedMode, Op, Status, SysParam
from agent.drivers.r30x.errors import AddressMismatch, ChecksumError, PortLost, ReplyTimeout, SensorStatusError
from tests.fakes.r30x_sensor import FakeR30xSensor, identity_template
from tests.fingerprint.conftest import connect


def test_no_finger_then_capture_and_upload_template(fake: FakeR30xSensor) -> None:
    client = connect(fake)
    assert client.gen_img() is Status.NO_FINGER
    fake.place_finger("ana")
    assert client.gen_img() is Status.OK
    assert client.img2tz(1) is Status.OK
    assert client.gen_img() is Status.OK
    assert client.img2tz(2) is Status.OK
    assert client.reg_model() is Status.OK
    assert client.up_char(1) == identity_template("ana")


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_download_then_match_at_every_packet_size(size: int) -> None:
    with FakeR30xSensor(packet_size=size) as fake:
        client = connect(fake, packet_size=size)
        client.down_char(2, identity_template("ana"))
        fake.place_finger("ana", quality=0.9)
        assert client.gen_img() is Status.OK and client.img2tz(1) is Status.OK
        same = client.match()
        fake.place_finger("bob")
        assert client.gen_img() is Status.OK and client.img2tz(1) is Status.OK
        other = client.match()
        assert same.status is Status.OK and same.score > 200
        assert other.status is Status.NO_MATCH and other.score < 20
        assert client.up_char(2) == identity_template("ana")  # the download arrived intact


def test_password_required_then_verified() -> None:
    with FakeR30xSensor(password=0x0BADF00D) as fake:
        client = connect(fake)
        with pytest.raises(SensorStatusError) as err:
            client.read_system_parameters()
        assert err.value.sensor_status is Status.PASSWORD_REQUIRED and err.value.code == "sensor_password_required"
        with pytest.raises(SensorStatusError) as err:
            client.verify_password(1234)
        assert err.value.sensor_status is Status.WRONG_PASSWORD
        client.verify_password(0x0BADF00D)
        assert client.read_system_parameters().packet_size == 128


def test_custom_address_and_sys_para() -> None:
    with FakeR30xSensor(address=0x11223344, packet_size=64, security_level=4) as fake:
        params = connect(fake).read_system_parameters()
        assert (params.address, params.packet_size, params.security_level, params.baud) == (0x11223344, 64, 4, 57600)


def test_packets_for_another_address_are_ignored_by_the_sensor(fake: FakeR30xSensor) -> None:
    client = connect(fake, address=0x01020304, timeout=0.3)
    with pytest.raises(ReplyTimeout):
        client.gen_img()


def test_reply_from_the_wrong_address_is_rejected(fake: FakeR30xSensor) -> None:
    fake.reply_address = 0xDEADBEEF
    with pytest.raises(AddressMismatch) as err:
        connect(fake).gen_img()
    assert err.value.code == "sensor_wrong_address"


def test_bad_checksum_reply_is_a_clear_error_never_a_result(fake: FakeR30xSensor) -> None:
    fake.place_finger("ana")
    fake.corrupt_replies = 1
    client = connect(fake, timeout=0.3)
    with pytest.raises(ChecksumError):
        client.gen_img()
    assert client.gen_img() is Status.OK  # the next exchange works again


def test_junk_before_replies_is_skipped(fake: FakeR30xSensor) -> None:
    fake.junk_before_reply = b"\x00\xef\x01\xff\x55"
    assert connect(fake).gen_img() is Status.NO_FINGER


def test_stalled_line_times_out(fake: FakeR30xSensor) -> None:
    fake.silent = True
    with pytest.raises(ReplyTimeout) as err:
        connect(fake, timeout=0.2).gen_img()
    assert err.value.code == "sensor_timeout" and "no respondió" in err.value.es


def test_wrong_size_template_is_refused_before_sending(fake: FakeR30xSensor) -> None:
    client = connect(fake)
    with pytest.raises(ValueError):
        client.down_char(2, bytes(511))
    assert Op.DOWN_CHAR not in fake.received_ops


def test_led_on_r503_and_refused_elsewhere() -> None:
    with FakeR30xSensor(model="R503") as fake:
        connect(fake).led(LedMode.BREATHING, LedColor.BLUE, speed=0x40, cycles=0)
        assert fake.led_state == (1, 0x40, 2, 0)
    with FakeR30xSensor(model="R307") as fake:
        with pytest.raises(SensorStatusError):
            connect(fake).led(LedMode.ON, LedColor.RED)


def test_set_security_level(fake: FakeR30xSensor) -> None:
    client = connect(fake)
    client.set_system_parameter(SysParam.SECURITY_LEVEL, 5)
    assert client.read_system_parameters().security_level == 5
    with pytest.raises(SensorStatusError):
        client.set_system_parameter(SysParam.SECURITY_LEVEL, 9)


def test_unplugged_port_raises_port_lost(fake: FakeR30xSensor) -> None:
    client = connect(fake)
    assert client.gen_img() is Status.NO_FINGER
    fake.unplug()
    with pytest.raises(PortLost) as err:
        client.gen_img()
    assert err.value.code == "sensor_disconnected"
