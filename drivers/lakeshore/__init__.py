"""Lake Shore Cryotronics drivers: Model 372 AC resistance bridge and Model 336 controller.

``LakeShore372`` (:mod:`drivers.lakeshore.ls372`) and ``LakeShore336``
(:mod:`drivers.lakeshore.ls336`) are PyMeasure instruments with the
daemon's ``poll_specs`` / ``control_specs`` / ``action_specs``.
"""

from drivers.lakeshore.ls336 import LakeShore336
from drivers.lakeshore.ls372 import LakeShore372

__all__ = ["LakeShore336", "LakeShore372"]
