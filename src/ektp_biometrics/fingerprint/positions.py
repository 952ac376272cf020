"""Finger positions: the ISO/IEC 19794-2 codes and the names MOSIP's SBI and CBEFF profiles use.

>>> FINGER_NAMES[2], NAME_TO_POSITION["Left Thumb"]
('Right IndexFinger', 6)
"""

from __future__ import annotations

__all__ = ["FINGER_NAMES", "NAME_TO_POSITION"]

#: ISO/IEC 19794-2 finger position code (1 = right thumb ... 10 = left little) -> MOSIP bioSubType.
FINGER_NAMES = {
    1: "Right Thumb",
    2: "Right IndexFinger",
    3: "Right MiddleFinger",
    4: "Right RingFinger",
    5: "Right LittleFinger",
    6: "Left Thumb",
    7: "Left IndexFinger",
    8: "Left MiddleFinger",
    9: "Left RingFinger",
    10: "Left LittleFinger",
}
NAME_TO_POSITION = {name: position for position, name in FINGER_NAMES.items()}
