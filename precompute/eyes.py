"""One eye's part of the warp: the iris turns inside the opening, the sclera fills around it, the lids blink.

Works in the eye's own frame (u along the corner-to-corner axis, v across it, down for an upright
face, both relative to the painted iris centre). ``EyeWarp.field`` gives the displacement for an
eye rotation and a lid closure; the engine samples it through its head map, so head and eyes make
one backward map. The model has two layers: the lids (fixed, following vertical gaze a little, and
coming down in a blink) and the eyeball behind them, whose sclera is always taken from painted
sclera at the same height between the lids, so neither iris nor lid is ever dragged across the
opening.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from monalisa.pool.geometry import Rect
from precompute.iris import measure_iris
from precompute.portrait import EyeGeometry

EYEBALL_RADIUS = 0.43      # eyeball radius in eye widths: iris offset ~ R sin(eye yaw)
EXAGGERATION = 1.5         # the radius may grow up to this much so the grid's extreme uses the travel
SIDE_RATIO = 1.15          # travel per degree may differ this much between left and right (off-centre irises)
IRIS_RIGID = 1.1           # the disc moved without distortion, in iris radii (keeps the limbus crisp)
PITCH_ROOM = 0.6           # vertical iris travel limit, in iris radii
LID_FOLLOW = 0.7           # share of the vertical gaze the lids follow (the upper lid rides with the iris)
LID_BAND = 0.05            # the eyeball's map runs on this far past the lid landmarks, in eye widths
HIDDEN_IRIS = 0.95         # iris the painted lids hid is taken from this far between them (their shaded edge)
FORESHORTEN = (0.45, 1.3)  # limits of the iris's width change (cos of the new over the painted eye angle)
LID_MARGIN = 0.03          # a closed upper lid overlaps the lower one by this much, in eye widths
LID_SKIN = 0.55            # lid skin above the upper lid that stretches down in a blink, in eye widths
REACH = 1.0                # the eye box reaches this far from the iris centre, in eye widths
CORNER_TAPER = 0.15        # the blink fades out this far beyond the eye corners, in eye widths


class EyeWarp:
    """The displacement field of one eye, set up once and evaluated per gaze direction and closure.

    ``image`` (the portrait), when given, is used to measure the painted iris's radius, as FaceMesh's
    can be a third too small on stylised paintings (see ``precompute.iris``).
    """

    def __init__(self, eye: EyeGeometry, iris_travel: float, max_yaw: float, max_pitch: float,
                 image: np.ndarray | None = None):
        if image is not None:
            eye = measure_iris(image, eye)
        self.eye = eye
        self.width = eye.width
        x0, y0, x1, y1 = eye_region(eye)
        self.x0, self.y0 = math.floor(x0), math.floor(y0)
        self.box_w, self.box_h = math.ceil(x1) - self.x0, math.ceil(y1) - self.y0
        left, right, center = (np.array(p) for p in (eye.corner_left, eye.corner_right, eye.center))
        self.center = center
        self.axis = (right - left) / max(self.width, 1e-6)
        self.normal = np.array([-self.axis[1], self.axis[0]])
        self.corner_u = (float((left - center) @ self.axis), float((right - center) @ self.axis))
        self.iris_radius = eye.iris_radius
        self.rigid = IRIS_RIGID * eye.iris_radius + 0.5
        self.ball = EYEBALL_RADIUS * self.width
        self.painted_u = -(self.corner_u[0] + self.corner_u[1]) / 2   # iris offset from the eye's middle
        radius = self.ball
        self.limit_left = iris_travel * max(0.0, -self.corner_u[0] - eye.iris_radius)
        self.limit_right = iris_travel * max(0.0, self.corner_u[1] - eye.iris_radius)
        self.gain_left, self.gain_right = _side_gains(self.limit_left, self.limit_right, radius, max_yaw)
        self.limit_v = iris_travel * PITCH_ROOM * eye.iris_radius
        self.gain_v = _side_gains(self.limit_v, self.limit_v, radius, max_pitch)[0]
        self.upper_u, self.upper_v = self._to_eye_frame(eye.upper_lid, center)
        self.lower_u, self.lower_v = self._to_eye_frame(eye.lower_lid, center)
        height = np.maximum(self.lower_v - np.interp(self.lower_u, self.upper_u, self.upper_v), 0)
        self.margin = max(LID_MARGIN * self.width, 0.75)
        self.height = max(float(height.max()), 1.0)
        self.skin = min(max(LID_SKIN * self.width, 1.3 * self.height + 3.5 * self.margin),
                        REACH * self.width + float(self.upper_v.min()) - 2)
        ys, xs = np.mgrid[0:self.box_h, 0:self.box_w].astype(np.float32)
        self._box_x, self._box_y = xs + self.x0, ys + self.y0

    def _to_eye_frame(self, polyline: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A lid polyline as (u, v) arrays sorted by u."""
        u = (polyline - center) @ self.axis
        v = (polyline - center) @ self.normal
        order = np.argsort(u)
        return u[order], v[order]

    def _lids(self, u: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Upper and lower lid heights (v) at each u (the corners' beyond the opening)."""
        return np.interp(u, self.upper_u, self.upper_v), np.interp(u, self.lower_u, self.lower_v)

    def travel(self, eye_yaw: float, eye_pitch: float) -> tuple[float, float]:
        """Iris offset (u, v) in pixels for an eye rotation in radians (up is -v)."""
        along = math.sin(eye_yaw) * (self.gain_right if eye_yaw > 0 else self.gain_left)
        across = -math.sin(eye_pitch) * self.gain_v
        return (min(max(along, -self.limit_left), self.limit_right),
                min(max(across, -self.limit_v), self.limit_v))

    def foreshortening(self, along: float, across: float) -> tuple[float, float]:
        """How much the iris disc narrows along u and v when moved by (along, across): the cosine of the
        eye angle its position implies, over the painted one's."""
        def cos_of(offset: float) -> float:
            return math.sqrt(1 - min(abs(offset) / self.ball, 0.95) ** 2)

        low, high = FORESHORTEN
        f_u = min(max(cos_of(self.painted_u + along) / cos_of(self.painted_u), low), high)
        f_v = min(max(cos_of(across), low), high)
        return f_u, f_v

    # ------------------------------------------------------------------------- the field

    def field(self, eye_yaw: float, eye_pitch: float, closure: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Displacement (x, y) on the eye box: the output pixel p samples the portrait at p - d.

        ``closure`` is the blink stage: 0 open (as without closure), 1 lids fully closed.
        """
        return self.field_at(self._box_x, self._box_y, eye_yaw, eye_pitch, closure)

    def field_at(self, xs: np.ndarray, ys: np.ndarray, eye_yaw: float, eye_pitch: float,
                 closure: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """The displacement at portrait positions (xs, ys); exactly 0 outside the eye box.

        Evaluated where it is used (not interpolated from a grid), so the lid's edge in a blink
        stays a clean edge.
        """
        dx, dy = xs - self.center[0], ys - self.center[1]
        u = dx * self.axis[0] + dy * self.axis[1]
        v = dx * self.normal[0] + dy * self.normal[1]
        along, across = self.travel(eye_yaw, eye_pitch)
        # The lids (and everything around the eye) follow part of the vertical gaze.
        reach_u, reach_v = 0.9 * self.width, 0.7 * self.width
        lifted = v - LID_FOLLOW * across * bump(u / reach_u, v / reach_v)
        if closure > 0:
            lifted = self._blink(u, lifted, min(float(closure), 1.0))
        source_u, source_v = self._eyeball(u, lifted, along, (1 - LID_FOLLOW) * across)
        du, dv = u - source_u, v - source_v
        in_box = ((xs >= self.x0) & (xs <= self.x0 + self.box_w - 1)
                  & (ys >= self.y0) & (ys <= self.y0 + self.box_h - 1))
        du, dv = np.where(in_box, du, 0), np.where(in_box, dv, 0)
        return (du * self.axis[0] + dv * self.normal[0]).astype(np.float32), \
               (du * self.axis[1] + dv * self.normal[1]).astype(np.float32)

    def _eyeball(self, u: np.ndarray, v: np.ndarray, along: float, across: float) -> tuple[np.ndarray, np.ndarray]:
        """Where each (u, v) in the (lid-relative) output samples the painting: the iris disc moved by
        (along, across) and foreshortened, sclera from painted sclera at the same height between the lids,
        the lids themselves in place (the map runs on LID_BAND past them, then fades out)."""
        corner_l, corner_r = self.corner_u
        uc = np.clip(u, corner_l, corner_r)
        upper, lower = self._lids(uc)
        middle, half = (upper + lower) / 2, np.maximum((lower - upper) / 2, 0.5)
        t = np.clip((v - middle) / half, -1.0, 1.0)
        vc = middle + t * half                                    # the point on or inside the opening

        f_u, f_v = self.foreshortening(along, across)
        up_a, low_a = self._lids(along)
        up_0, low_0 = self._lids(0.0)
        # Half-widths of the moved disc (output) and of the painted one (source) at this height between the lids.
        level_out = (up_a + low_a) / 2 + t * max((low_a - up_a) / 2, 0.5) - across
        level_src = (up_0 + low_0) / 2 + t * max((low_0 - up_0) / 2, 0.5)
        width_out = f_u * self.rigid * np.sqrt(np.clip(1 - (level_out / (f_v * self.rigid)) ** 2, 0, 1))
        width_src = self.rigid * np.sqrt(np.clip(1 - (level_src / self.rigid) ** 2, 0, 1))

        in_disc = np.abs(uc - along) < width_out
        # Sclera: each side of the moved disc stretched or squeezed onto the painted sclera on that side.
        on_left = uc < along
        sclera_u = np.where(on_left,
                            corner_l + _corner_kept(uc - corner_l, along - width_out - corner_l, -width_src - corner_l),
                            corner_r - _corner_kept(corner_r - uc, corner_r - along - width_out, corner_r - width_src))
        sclera_u = np.clip(sclera_u, corner_l, corner_r)
        near = 1 - smoothstep((np.abs(uc - along) - width_out) / max(self.rigid, 1.0))
        shift = min(max(across / max((low_a - up_a) / 2, 0.5), -0.4), 0.4)
        sclera_t = t - shift * (1 - t * t) * near
        s_upper, s_lower = self._lids(sclera_u)
        sclera_v = (s_upper + s_lower) / 2 + sclera_t * np.maximum((s_lower - s_upper) / 2, 0.5)
        # Iris: the disc moved rigidly (foreshortened); where it shows what the painted lids hid, their edge.
        disc_u = np.clip((uc - along) / f_u, corner_l, corner_r)
        disc_v = (vc - across) / f_v
        d_upper, d_lower = self._lids(disc_u)
        d_middle, d_half = (d_upper + d_lower) / 2, np.maximum((d_lower - d_upper) / 2, 0.5)
        d_t = (disc_v - d_middle) / d_half
        hidden = np.maximum(HIDDEN_IRIS, np.abs(t))          # (never nearer the lid than the output pixel is)
        disc_v = np.where(np.abs(d_t) > hidden, d_middle + np.clip(d_t, -hidden, hidden) * d_half, disc_v)

        source_u = np.where(in_disc, disc_u, sclera_u)
        # Past the lids, the lid itself: as far beyond the painted lid at the source as we are beyond ours.
        s_upper, s_lower = self._lids(source_u)
        lid = (s_upper + s_lower) / 2 + np.sign(t) * np.maximum((s_lower - s_upper) / 2, 0.5)
        source_v = np.where(np.abs(v - vc) > 1e-4, lid, np.where(in_disc, disc_v, sclera_v)) + (v - vc)
        source_u = source_u + (u - uc)
        # Past the lids (and the corners) the map fades to the identity within two bands.
        band = max(LID_BAND * self.width, 1.0)
        outside = np.maximum(np.abs(v - vc), np.abs(u - uc))
        keep = smoothstep(2 - outside / band)
        return u + keep * (source_u - u), v + keep * (source_v - v)

    def _blink(self, u: np.ndarray, v: np.ndarray, closure: float) -> np.ndarray:
        """The heights v' to sample the open eye at so the upper lid comes down ``closure`` of the way to
        the lower one: the lid skin above it stretches down (lashes with it), the eye below keeps its place."""
        upper, lower = self._lids(u)
        corner_l, corner_r = self.corner_u
        beyond = np.maximum(corner_l - u, u - corner_r)
        taper = 1 - smoothstep(beyond / max(CORNER_TAPER * self.width, 1.0))
        height = np.maximum(lower - upper, 0)
        lid_out = upper + closure * (height + self.margin) * taper        # the new lid line
        # What shows there: the painted lid line with its lashes, taken a little above it (more toward the
        # corners, where the painted lids meet over a sliver of sclera).
        lid_src = upper - closure * self.margin * taper * (1 - 0.5 * height / self.height)
        top = upper - self.skin
        span = np.maximum(lid_out - top, 1e-3)
        ratio = (lid_src - top) / span
        x = np.clip((v - top) / span, 0, 1)
        stretched = top + span * (x + (ratio - 1) * x ** 1.25)   # smooth at the top, stretched evenly below
        # A one-pixel ramp below the new lid line keeps the edge soft while any opening is left.
        ramp = np.clip(lower - lid_out, 0, 1)
        into = np.clip((v - lid_out) / np.maximum(ramp, 1e-3), 0, 1)
        ramped = lid_src + into * (lid_out + ramp - lid_src)
        return np.where((v >= top) & (v <= lid_out), stretched,
                        np.where((v > lid_out) & (v < lid_out + ramp), ramped, v))

    def add_displacement(self, map_x: np.ndarray, map_y: np.ndarray, shift_x: np.ndarray,
                         shift_y: np.ndarray, rect: Rect, eye_yaw: float, eye_pitch: float,
                         closure: float = 0.0) -> None:
        """Add this eye's displacement, taken where the head map points, to shift_x/y."""
        # Output pixel p samples the eye box at map(p) = p - head shift, so the pixels that
        # land in the box are the box moved by the head shift (taken at the box centre).
        col = min(max(self.x0 + self.box_w // 2 - rect.x, 0), rect.width - 1)
        row = min(max(self.y0 + self.box_h // 2 - rect.y, 0), rect.height - 1)
        head_dx = round(rect.x + col - float(map_x[row, col]))
        head_dy = round(rect.y + row - float(map_y[row, col]))
        left = max(0, self.x0 - rect.x + head_dx - 2)
        top = max(0, self.y0 - rect.y + head_dy - 2)
        right = min(rect.width, self.x0 - rect.x + head_dx + self.box_w + 2)
        bottom = min(rect.height, self.y0 - rect.y + head_dy + self.box_h + 2)
        if right <= left or bottom <= top:
            return
        field_x, field_y = self.field_at(map_x[top:bottom, left:right], map_y[top:bottom, left:right],
                                         eye_yaw, eye_pitch, closure)
        shift_x[top:bottom, left:right] += field_x
        shift_y[top:bottom, left:right] += field_y


def eye_region(eye: EyeGeometry) -> tuple[float, float, float, float]:
    """The box around an eye that its displacement can touch (lids following and blinking included)."""
    reach = REACH * eye.width
    x, y = eye.center
    return x - reach, y - reach, x + reach, y + reach


def _corner_kept(x: np.ndarray, out_len: np.ndarray, src_len: np.ndarray) -> np.ndarray:
    """Map distance-from-corner ``x`` in [0, out_len] onto [0, src_len]: the corner's own half kept at its
    painted scale, the stretch or squeeze all in the half next to the iris (a small dark corner is not
    smeared across the eye when the iris leaves it)."""
    out_len = np.maximum(out_len, 1e-3)
    src_len = np.maximum(src_len, 0.0)
    kept = 0.5 * np.minimum(out_len, src_len)
    rest = (src_len - kept) / np.maximum(out_len - kept, 1e-3)
    return np.where(x <= kept, x, kept + (x - kept) * rest)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def bump(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth hill: 1 at the origin, exactly 0 from unit (elliptic) radius on."""
    r2 = x * x + y * y
    return np.where(r2 < 1, (1 - r2) ** 2, 0).astype(np.float32)


def _side_gains(limit_a: float, limit_b: float, radius: float, max_angle: float) -> tuple[float, float]:
    """Iris travel (pixels per unit sine of the eye angle) toward each side.

    Enough for the grid's extreme angle to reach the travel limit (a big visible range
    matters more than exact degrees), but at most EXAGGERATION times the physical eyeball
    radius; the sides differ at most SIDE_RATIO so the sweep moves in even steps.
    """
    reach = math.sin(max_angle) if max_angle > 1e-6 else math.sin(math.radians(30))
    gains = [min(limit / reach, EXAGGERATION * radius) for limit in (limit_a, limit_b)]
    low = min(gains)
    if low > 0:
        gains = [min(gain, SIDE_RATIO * low) for gain in gains]
    return gains[0], gains[1]


def warp_image(image: np.ndarray, warp: EyeWarp, eye_yaw: float, eye_pitch: float,
               closure: float = 0.0) -> np.ndarray:
    """The image with only this eye's field applied (for tests and pictures): one Lanczos remap of its box."""
    field_x, field_y = warp.field(eye_yaw, eye_pitch, closure)
    out = image.copy()
    box = Rect(warp.x0, warp.y0, warp.box_w, warp.box_h)
    height, width = image.shape[:2]
    if not box.fits_in(width, height):
        raise ValueError(f"the eye box {box} does not fit in the {width}x{height} image")
    warped = cv2.remap(image, warp._box_x - field_x, warp._box_y - field_y, cv2.INTER_LANCZOS4,
                       borderMode=cv2.BORDER_REFLECT)
    moved = (np.abs(field_x) + np.abs(field_y)) > 1e-3
    out[box.slices] = np.where(moved[..., None], warped, image[box.slices])
    return out
