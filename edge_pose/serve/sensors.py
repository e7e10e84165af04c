"""Board temperatures and power rails read from sysfs, where the kernel exposes them (else nothing).

- Thermal zones: /sys/class/thermal/thermal_zone*/temp (millidegrees Celsius), named by the zone's `type`
  (on a Jetson: cpu-thermal, gpu-thermal, CPU-therm, ...).
- Jetson INA3221 power monitors. JetPack 5/6 (hwmon driver): /sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/
  with in{N}_label (rail name), in{N}_input (bus voltage, mV), curr{N}_input (current, mA). JetPack 4 (IIO
  driver ina3221x): /sys/bus/i2c/drivers/ina3221x/*/iio:device*/ with rail_name_{N}, in_voltage{N}_input (mV),
  in_current{N}_input (mA), in_power{N}_input (mW). Other hwmon devices named ina* under /sys/class/hwmon are
  read the hwmon way.

`root` (default "/") lets tests point the readers at a copy of that layout.
"""
from __future__ import annotations

import glob
import os
import re
from collections import namedtuple

Temperature = namedtuple("Temperature", "zone type celsius")
Rail = namedtuple("Rail", "device rail volts amperes watts")


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _number(path):
    text = _read(path)
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _under(root, pattern):
    return sorted(glob.glob(os.path.join(root, pattern.lstrip("/"))))


def temperatures(root="/"):
    """[Temperature(zone, type, celsius)] of the readable thermal zones."""
    out = []
    for zone_dir in _under(root, "/sys/class/thermal/thermal_zone*"):
        milli = _number(os.path.join(zone_dir, "temp"))
        if milli is None:
            continue
        zone = os.path.basename(zone_dir)
        out.append(Temperature(zone, _read(os.path.join(zone_dir, "type")) or zone, milli / 1000.0))
    return out


def _hwmon_rails(path, device):
    rails = []
    for volt_file in sorted(glob.glob(os.path.join(path, "in*_input"))):
        n = re.match(r"in(\d+)_input$", os.path.basename(volt_file))
        if not n:
            continue
        n = n.group(1)
        millivolts = _number(volt_file)
        milliamps = _number(os.path.join(path, "curr%s_input" % n))
        if millivolts is None or milliamps is None:
            continue
        label = _read(os.path.join(path, "in%s_label" % n)) or "in%s" % n
        if label != "NC":  # a channel wired to nothing
            rails.append(Rail(device, label, millivolts / 1e3, milliamps / 1e3, millivolts * milliamps / 1e6))
    return rails


def _iio_rails(path, device):
    rails = []
    for name_file in sorted(glob.glob(os.path.join(path, "rail_name_*"))):
        n = name_file.rsplit("_", 1)[1]
        millivolts = _number(os.path.join(path, "in_voltage%s_input" % n))
        milliamps = _number(os.path.join(path, "in_current%s_input" % n))
        milliwatts = _number(os.path.join(path, "in_power%s_input" % n))
        if milliwatts is None and millivolts is not None and milliamps is not None:
            milliwatts = millivolts * milliamps / 1e3
        if milliwatts is None:
            continue
        rails.append(Rail(device, _read(name_file) or "rail%s" % n, None if millivolts is None else millivolts / 1e3,
                      None if milliamps is None else milliamps / 1e3, milliwatts / 1e3))
    return rails


def power_rails(root="/"):
    """[Rail(device, rail, volts, amperes, watts)] of the INA3221 channels found (volts / amperes may be None;
    device: the I2C device, e.g. 1-0040, as a board may carry several monitors)."""
    seen, out = set(), []
    hwmon = _under(root, "/sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*")
    hwmon += [d for d in _under(root, "/sys/class/hwmon/hwmon*")
              if (_read(os.path.join(d, "name")) or "").startswith("ina")]
    for d in hwmon:
        real = os.path.realpath(d)
        if real not in seen:
            seen.add(real)
            out.extend(_hwmon_rails(d, os.path.basename(os.path.dirname(os.path.dirname(real)))))
    for d in _under(root, "/sys/bus/i2c/drivers/ina3221x/*/iio:device*"):
        real = os.path.realpath(d)
        if real not in seen:
            seen.add(real)
            out.extend(_iio_rails(d, os.path.basename(os.path.dirname(real))))
    return out
