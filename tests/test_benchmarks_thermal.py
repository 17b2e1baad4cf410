"""Thermal and power parsers on sample outputs of vcgencmd, tegrastats, nvidia-smi and sysfs."""

from __future__ import annotations

from pathlib import Path

from benchmarks import thermal

SAMPLES = Path(__file__).parent / "fixtures" / "bench"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def test_raspberry_pi_vcgencmd():
    assert thermal.parse_vcgencmd_temp(sample("vcgencmd_measure_temp.txt")) == 61.8
    assert thermal.parse_clock(sample("vcgencmd_measure_clock_arm.txt")) == 1500.4
    t = thermal.parse_throttled(sample("vcgencmd_get_throttled.txt"))  # 0x50005
    assert t["flags"] == ["under-voltage", "throttled", "under-voltage occurred", "throttling occurred"]
    assert t["throttled"] and t["under_voltage"]
    clean = thermal.parse_throttled("throttled=0x0")
    assert not clean["throttled"] and not clean["under_voltage"] and clean["flags"] == []
    past_only = thermal.parse_throttled("throttled=0x80000")  # soft temperature limit occurred
    assert past_only["throttled"] and not past_only["under_voltage"]


def test_pi5_pmic_adc():
    adc = thermal.parse_pmic_adc(sample("vcgencmd_pmic_read_adc.txt"))
    assert adc["EXT5V_V_V"] == 4.81332 and adc["VDD_CORE_A_A"] == 0.76


def test_tegrastats_orin_and_nano():
    orin = thermal.parse_tegrastats(sample("tegrastats_orin.txt"))
    assert orin["temp_c"] == 52.656 and orin["clock_mhz"] == 1510 and orin["gpu_load"] == 38
    assert orin["cpu_load"] == [12, 3, 0, 7] and orin["power_mw"]["VDD_IN"] == 5586
    nano = thermal.parse_tegrastats(sample("tegrastats_nano.txt"))
    assert nano["temp_c"] == 42.0  # the PMIC's fixed 100 C stub is not a temperature
    assert nano["power_mw"]["POM_5V_IN"] == 2288 and nano["clock_mhz"] == 1479


def test_nvidia_smi_throttle_reasons():
    g = thermal.parse_nvidia_smi(sample("nvidia_smi_query.txt"))
    assert g["temp_c"] == 71 and g["clock_mhz"] == 1755 and g["power_w"] == 301.52
    assert g["throttled"] and g["flags"] == ["software thermal slowdown"]
    idle = thermal.parse_nvidia_smi("35, 210, [N/A], 0x0000000000000001")  # idle is not throttling
    assert not idle["throttled"] and idle["power_w"] is None


def test_sysfs_thermal_zones(tmp_path):
    for i, (kind, milli) in enumerate((("x86_pkg_temp", 48000), ("acpitz", 27800))):
        zone = tmp_path / "sys/class/thermal" / f"thermal_zone{i}"
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(f"{milli}\n")
    cpufreq = tmp_path / "sys/devices/system/cpu/cpu0/cpufreq"
    cpufreq.mkdir(parents=True)
    (cpufreq / "scaling_cur_freq").write_text("2400000\n")
    s = thermal.read_sysfs(tmp_path)
    assert s["temp_c"] == 48.0 and s["clock_mhz"] == 2400.0 and len(s["temps"]) == 2
    assert thermal.read_sysfs(tmp_path / "empty") == {"temps": {}, "temp_c": None, "clock_mhz": None}


def test_a_failing_tool_gives_an_empty_reading():
    def broken():
        raise OSError("vcgencmd: VCHI initialization failed")

    reading = thermal.sample(broken)
    assert "error" in reading and "time" in reading
