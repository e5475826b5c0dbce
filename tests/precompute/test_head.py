"""The head turn on a generated 3D-ish face: z-buffered (no folds), local, monotonic, clamped, calibrated."""

import dataclasses
import math

import cv2
import numpy as np
import pytest

from monalisa.config import WarpConfig
from precompute.gaze_plan import Command, FacePlan, Response, Responses, head_limits, split
from precompute.head import HeadModel, HeadPose, delaunay, face_oval, rasterise
from precompute.portrait import faces_from_eye_points
from precompute.warp import WarpEngine

SIZE = (420, 400)                 # height, width
CENTRE = (200.0, 215.0)           # face centre
AXES = (90.0, 115.0)              # face half width, half height (pixels)
DEPTH = 70.0                      # the face's bulge toward the viewer at its centre (pixels)
NOSE = 45.0                       # the nose stands out this much more
NOSE_TIP = (200.0, 235.0)
EYES = (160.0, 190.0, 240.0, 190.0, 9.0)
YAWS = [-30.0, -15.0, 0.0, 15.0, 30.0]
CORNER = 30.0                     # red dots this far left of each eye centre (they move with the head only)


def face_depth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z (pixels, < 0 toward the viewer) of the generated face: an ellipsoid with a sharp nose."""
    u, v = (x - CENTRE[0]) / AXES[0], (y - CENTRE[1]) / AXES[1]
    bulge = DEPTH * np.sqrt(np.clip(1 - u * u - v * v, 0, 1))
    nose = NOSE * np.exp(-(((x - NOSE_TIP[0]) / 12) ** 2 + ((y - NOSE_TIP[1] + 25) / 40) ** 2))
    return -(bulge + nose)


def generated_landmarks() -> np.ndarray:
    """478 points (x, y, z) spread over the face ellipse; 234/454 at its left/right ends."""
    count = 468
    k = np.arange(count) + 0.5
    radius = np.sqrt(k / count) * 0.97
    angle = k * math.pi * (3 - math.sqrt(5))
    x = CENTRE[0] + AXES[0] * radius * np.cos(angle)
    y = CENTRE[1] + AXES[1] * radius * np.sin(angle)
    points = np.zeros((478, 3))
    points[:count, 0], points[:count, 1] = x, y
    oval = face_oval()                        # the outline: 234 left, 10 top, 454 right, 152 bottom
    anchors = [oval.index(i) for i in (234, 10, 454, 152)]
    anchors = [a + len(oval) if a < anchors[0] else a for a in anchors] + [anchors[0] + len(oval)]
    k = np.arange(len(oval))
    k = np.where(k < anchors[0], k + len(oval), k)
    angle = np.interp(k, anchors, math.pi * np.array([1.0, 1.5, 2.0, 2.5, 3.0]))
    points[oval, 0] = CENTRE[0] + AXES[0] * np.cos(angle)
    points[oval, 1] = CENTRE[1] + AXES[1] * np.sin(angle)
    points[:count, 2] = face_depth(points[:count, 0], points[:count, 1])
    points[468:, :2] = EYES[0], EYES[1]
    return points


def draw_portrait() -> np.ndarray:
    """Textured background and face, dark nose-tip dot, eyes with dark irises and corner dots."""
    rng = np.random.default_rng(3)
    image = np.full((*SIZE, 3), (70, 110, 90), np.uint8)
    image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    face = np.full((*SIZE, 3), (220, 180, 150), np.uint8)
    face = np.clip(face + rng.normal(0, 10, face.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(SIZE, np.uint8)
    cv2.ellipse(mask, (int(CENTRE[0]), int(CENTRE[1])), (int(AXES[0]), int(AXES[1])), 0, 0, 360, 1, -1)
    image[mask > 0] = face[mask > 0]
    for x, y in ((EYES[0], EYES[1]), (EYES[2], EYES[3])):
        cv2.ellipse(image, (int(x), int(y)), (22, 8), 0, 0, 360, (245, 245, 240), -1)
        cv2.circle(image, (int(x), int(y)), int(EYES[4]), (40, 30, 20), -1)
    cv2.circle(image, (int(NOSE_TIP[0]), int(NOSE_TIP[1])), 4, (0, 0, 0), -1)
    cv2.circle(image, (int(NOSE_TIP[0]), int(NOSE_TIP[1]) - 8), 3, (0, 0, 255), -1)
    for x in (EYES[0], EYES[2]):
        cv2.circle(image, (int(x - CORNER), int(EYES[1]) - 10), 2, (255, 0, 0), -1)
    return image


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return draw_portrait()


@pytest.fixture(scope="module")
def face(portrait):
    eyes_only = faces_from_eye_points(portrait, EYES)[0]
    points = generated_landmarks()
    box = (*points[:468, :2].min(axis=0), *points[:468, :2].max(axis=0))
    return dataclasses.replace(eyes_only, box=tuple(float(v) for v in box), landmarks=points[:, :2].copy(),
                               landmarks_3d=points)


@pytest.fixture(scope="module")
def head(face, portrait) -> HeadModel:
    return HeadModel(face, None, portrait.shape)


def dark_centroid(image: np.ndarray, x: float, y: float, reach: int = 80, below: float = 15) -> tuple[float, float]:
    """Centroid of the pixels darker than ``below`` around (x, y)."""
    x0, y0 = max(0, int(x) - reach), max(0, int(y) - reach)
    box = image[y0:y0 + 2 * reach, x0:x0 + 2 * reach].astype(float).mean(axis=2)
    weight = np.clip(below - box, 0, None)
    ys, xs = np.mgrid[0:box.shape[0], 0:box.shape[1]]
    return x0 + float((weight * xs).sum() / weight.sum()), y0 + float((weight * ys).sum() / weight.sum())


def warp(image: np.ndarray, head: HeadModel, pose: HeadPose) -> np.ndarray:
    out = image.copy()
    map_x, map_y = head.backward_map(pose)
    out[head.rect.slices] = cv2.remap(image, map_x, map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
    return out


def test_rasterise_covers_a_grid_once_with_its_values():
    xs, ys = np.meshgrid(np.arange(0, 21, 5.0), np.arange(0, 21, 5.0))
    x, y = xs.ravel(), ys.ravel()
    index = np.arange(25).reshape(5, 5)
    a, b, c, d = index[:-1, :-1].ravel(), index[:-1, 1:].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel()
    triangles = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])
    pixel, (vx, vy) = rasterise(x, y, triangles, 21, 21, np.zeros(25), (x, y))
    assert np.array_equal(np.unique(pixel), np.arange(21 * 21))
    assert np.allclose(vx, pixel % 21) and np.allclose(vy, pixel // 21)


def test_rasterise_keeps_the_nearest_of_overlapping_triangles():
    x = np.array([0.0, 10, 0, 0, 10, 0])
    y = np.array([0.0, 0, 10, 0, 0, 10])
    triangles = np.array([[0, 1, 2], [3, 4, 5]])
    order = np.array([5.0, 5, 5, 1, 1, 1])                      # the second triangle is nearer
    values = np.array([0.0, 0, 0, 1, 1, 1])
    pixel, (which,) = rasterise(x, y, triangles, 11, 11, order, (values,))
    assert len(np.unique(pixel)) == len(pixel) and (which == 1).all()


def test_delaunay_triangulates_points():
    points = np.array([[0.0, 0], [10, 0], [0, 10], [10, 10], [5, 4]])
    triangles = delaunay(points)
    assert triangles.shape == (4, 3) and set(triangles.ravel()) == set(range(5))


def test_depth_follows_the_landmarks_and_eases_back_outside(head):
    points = np.array([NOSE_TIP, (CENTRE[0] - 0.5 * AXES[0], CENTRE[1])])
    depth, weight = head.surface(points)
    expected = face_depth(points[:, 0], points[:, 1]) - head.axis[2]
    assert np.allclose(depth, expected, atol=0.15 * NOSE) and (weight == 1).all()
    reach = np.linspace(1.0, 1.48, 7) * AXES[0]       # from the face's edge to the head region's
    outside, _ = head.surface(np.stack([CENTRE[0] - reach, np.full(7, CENTRE[1])], axis=1))
    assert all(abs(a) >= abs(b) - 1.0 for a, b in zip(outside, outside[1:]))
    assert abs(outside[-1]) < 0.1 * DEPTH                      # back at the axis depth near the outline


def test_backward_map_is_a_z_buffer_of_the_turned_surface(head):
    """Every output pixel shows the nearest surface point that lands on it: no hidden surface, no fold."""
    pose = HeadPose(28.0, 6.0)
    map_x, map_y = head.backward_map(pose)
    # An independent z-buffer: splat a dense (quarter-pixel) sampling of the surface forward.
    rows, cols = head.rect.slices
    ys, xs = np.mgrid[rows.start:rows.stop:0.25, cols.start:cols.stop:0.25]
    source = np.stack([xs.ravel(), ys.ravel()], axis=1)
    depth, weight = head.surface(source)
    out_x, out_y, order = head.move(source[:, 0], source[:, 1], depth, weight, pose)
    px = np.round(out_x - head.rect.x).astype(int)
    py = np.round(out_y - head.rect.y).astype(int)
    inside = (px >= 0) & (px < head.rect.width) & (py >= 0) & (py < head.rect.height)
    nearest = np.full(head.rect.width * head.rect.height, np.inf)
    np.minimum.at(nearest, (py * head.rect.width + px)[inside], order[inside])
    nearest = nearest.reshape(head.rect.height, head.rect.width)
    # What the map shows at each pixel, and how deep that point is once turned.
    shown = np.stack([map_x.ravel(), map_y.ravel()], axis=1)
    shown_depth, shown_weight = head.surface(shown)
    back_x, back_y, shown_order = head.move(shown[:, 0], shown[:, 1], shown_depth, shown_weight, pose)
    moving = (shown_weight == 1) & np.isfinite(nearest.ravel())
    grid_y, grid_x = np.mgrid[0:head.rect.height, 0:head.rect.width]
    landed = np.hypot(back_x - head.rect.x - grid_x.ravel(), back_y - head.rect.y - grid_y.ravel())
    assert np.percentile(landed[moving], 99) < 0.75            # the map inverts the turn
    hidden = shown_order[moving] > nearest.ravel()[moving] + 8.0
    assert hidden.mean() < 0.002                              # nothing shown from behind a nearer surface
    # The turn really hides something: some surface points are behind others.
    assert (order[inside] > nearest[py[inside], px[inside]] + 8.0).mean() > 0.005


def test_nothing_changes_outside_the_band(portrait, head):
    for pose in (HeadPose(-25.0, 0.0), HeadPose(25.0, -8.0)):
        turned = warp(portrait, head, pose)
        changed = np.any(turned != portrait, axis=2)
        outside = np.ones(portrait.shape[:2], bool)
        outside[head.rect.slices] = ~cv2.dilate(head.changed.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        assert changed.any() and not changed[outside].any()


def test_the_nose_crosses_the_face_monotonically(portrait, head):
    xs = [dark_centroid(warp(portrait, head, HeadPose(yaw, 0.0)), *NOSE_TIP)[0] for yaw in YAWS]
    assert all(a < b for a, b in zip(xs, xs[1:])), xs
    assert xs[-1] - xs[0] > 2 * (DEPTH + NOSE) * math.sin(math.radians(30)) * 0.55
    ys = [dark_centroid(warp(portrait, head, HeadPose(0.0, pitch)), *NOSE_TIP)[1] for pitch in (-8, 0, 8)]
    assert ys[0] > ys[1] > ys[2]                              # looking up lifts the nose


def test_split_eyes_lead_and_the_head_follows():
    head, eye = split(4.0, 0.0, 0.2, 15.0, (-15, 15), (-30, 30))
    assert head == pytest.approx(0.8) and eye == pytest.approx(3.2)
    head, eye = split(30.0, 0.0, 0.2, 15.0, (-15, 15), (-30, 30))
    assert eye == pytest.approx(15.0) and head == pytest.approx(15.0)
    head, eye = split(30.0, 0.0, 0.2, 15.0, (-15, 12), (-30, 30))   # head at its limit: the eyes go on
    assert head == 12 and eye == pytest.approx(18.0)
    head, eye = split(0.0, 20.0, 0.2, 15.0, (-15, 15), (-30, 30))   # eyes painted far aside stay put
    assert head == 0 and eye == 0


def test_limits_are_smaller_toward_the_side_never_shown():
    config = WarpConfig()
    assert head_limits(0.0, config) == (-20.0, 20.0, -8.0, 8.0)
    low, high, _, _ = head_limits(-20.0, config)    # painted turned toward the image's left
    assert (low, high) == (-20.0, 14.0)
    low, high, _, _ = head_limits(20.0, config)
    assert (low, high) == (-14.0, 20.0)
    assert head_limits(5.0, WarpConfig(head_yaw_limit=0.0))[:2] == (0.0, 0.0)


class Painted:
    def __init__(self, head_yaw=0.0, head_pitch=0.0, eye_yaw=0.0, eye_pitch=0.0):
        self.head_yaw, self.head_pitch, self.eye_yaw, self.eye_pitch = head_yaw, head_pitch, eye_yaw, eye_pitch


def test_commands_are_clamped_at_the_limits():
    plan = FacePlan(WarpConfig(), Painted(head_yaw=-20.0, eye_yaw=5.0), head_limits(-20.0, WarpConfig()))
    assert plan.painted_gaze == (-15.0, 0.0)
    assert plan.command(-15.0, 0.0) == Command()                     # the painted gaze is the painting
    far_right, far_left = plan.command(80.0, 0.0), plan.command(-80.0, 0.0)
    assert far_right.head.yaw == 14.0 and far_left.head.yaw == -20.0
    assert plan.command(80.0, 40.0).head.pitch == 8.0
    heads = [plan.command(yaw, 0.0).head.yaw for yaw in range(-80, 81, 5)]
    assert all(a <= b for a, b in zip(heads, heads[1:]))


def test_responses_turn_true_degrees_into_commands():
    response = Response([(-20.0, -10.0), (10.0, 8.0)])
    assert response.forward(10.0) == pytest.approx(8.0) and response.inverse(-10.0) == pytest.approx(-20.0)
    assert response.inverse(16.0) == pytest.approx(20.0)             # extended with the outer slope
    assert Response().forward(7.0) == 7.0
    plan = FacePlan(WarpConfig(), None, (-15.0, 15.0, -8.0, 8.0), Responses(head_yaw=Response([(15.0, 10.0)])))
    assert plan.true_limits()[:2] == (-10.0, 10.0)
    assert plan.command(100.0, 0.0).head.yaw == pytest.approx(15.0)


def colour_centroid(image: np.ndarray, x: float, y: float, channel: int, reach: int = 80) -> tuple[float, float]:
    """Centroid of the pixels where ``channel`` stands out from the other two, around (x, y)."""
    x0, y0 = max(0, int(x) - reach), max(0, int(y) - reach)
    box = image[y0:y0 + 2 * reach, x0:x0 + 2 * reach].astype(float)
    others = [c for c in range(3) if c != channel]
    weight = np.clip(box[..., channel] - box[..., others].mean(axis=2) - 120, 0, None)
    ys, xs = np.mgrid[0:box.shape[0], 0:box.shape[1]]
    return x0 + float((weight * xs).sum() / weight.sum()), y0 + float((weight * ys).sum() / weight.sum())


class MarkerReader:
    """A viewer stand-in that reads the generated portrait by its markers: head yaw from the blue nose
    dot (reading only 70 % of the true turn), eye yaw from each iris's shift against the red dot by
    its corner (0.8 degrees per pixel)."""

    painted_head, painted_eye = -12.0, 6.0

    def __init__(self, portrait):
        self.portrait = portrait
        self.nose = colour_centroid(portrait, *NOSE_TIP, channel=2)[0]
        self.irises = self._irises(portrait)

    @staticmethod
    def _irises(image):
        shifts = []
        for x in (EYES[0], EYES[2]):
            corner = colour_centroid(image, x - CORNER, EYES[1], channel=0, reach=30)[0]
            band = image[int(EYES[1]) - 12:int(EYES[1]) + 12, int(corner) + 8:int(corner + 2 * CORNER) - 8]
            weight = np.clip(90 - band.astype(float).mean(axis=2), 0, None).sum(axis=0)
            shifts.append(8 + float((weight * np.arange(len(weight))).sum() / weight.sum()))
        return np.array(shifts)

    def painted(self, image, face):
        return Painted(self.painted_head, 0.0, self.painted_eye, 0.0)

    def unchanged(self, face):
        return self.frame(self.portrait, face)

    def frame(self, image, face):
        nose = colour_centroid(image, *NOSE_TIP, channel=2)[0]
        head = 0.7 * math.degrees(math.asin(np.clip((nose - self.nose) / (DEPTH + NOSE), -1, 1)))
        eye = 0.8 * float(np.mean(self._irises(image) - self.irises))
        return Painted(head_yaw=head, eye_yaw=self.painted_eye + eye)


def test_calibration_makes_frames_read_as_their_labels(portrait, face):
    reader = MarkerReader(portrait)
    engine = WarpEngine(portrait, [face], WarpConfig(), YAWS, [0.0], reader=reader)
    assert engine.painted_gaze() == (-6.0, 0.0)
    low, high = engine.reach()[:2]
    assert low < -6.0 - 8 and high > -6.0 + 8
    for target in np.linspace(max(low, YAWS[0]) + 1, min(high, YAWS[-1]) - 1, 5):
        out = portrait.copy()
        out[engine.patch_rect().slices] = engine.render(target, 0.0)
        reading = reader.frame(out, face)
        assert reader.painted_head + reading.head_yaw + reading.eye_yaw == pytest.approx(target, abs=1.5)
    assert engine.params()["faces"][0]["head_yaw_limits"][0] < 0
