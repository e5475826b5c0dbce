"""The head turn: a portrait's head as a depth-mapped mesh, rotated in 3D and drawn back with a z-buffer.

Set up once per face: a depth map from FaceMesh's 3D landmarks (holes of eyes and mouth filled by
the landmarks' triangulation, smoothed; hair and hat fall back to the rotation axis toward the head
outline), the head region (the person's segmentation cut by an ellipse around the face) and a fine
node grid whose motion fades out over a short band beyond that region. Per frame the nodes rotate
about a vertical and a horizontal axis through the middle of the cheeks (landmarks 234/454), and the
triangles are rasterised with a z-buffer into a backward map: surface that turns away is hidden by
what comes in front of it, never folded over it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from monalisa.pool.geometry import Rect
from precompute.eyes import smoothstep
from precompute.portrait import FaceGeometry

NODE_STEP = 4              # node grid spacing in portrait pixels (the map is affine per triangle)
SMOOTH = 0.025             # depth smoothing (Gaussian sigma), in face widths
BAND = (0.08, 0.3)         # the motion fades out over a band outside the head region: at least / most, in face widths
FOLD_MARGIN = 1.8          # ...and at least this many times as wide as the region's edge moves (no fold)
HEAD_ELLIPSE = (0.75, 0.75)  # head region ellipse semi-axes, in face widths / face heights
HEAD_LIFT = 0.12           # the ellipse centre sits this far above the face centre, in face heights
EDGE_SMOOTH = 0.06         # the face edge's depth is smoothed along the edge this much, in face widths
OUTLINE_SMOOTH = 0.03      # the person's outline is smoothed this much (Gaussian sigma), in face widths
BACKGROUND_DEPTH = 1e6     # z of nodes that do not move: behind everything that does
_FAR = 1e30
_CHEEKS = (234, 454)
_IRISES = slice(468, 478)


@dataclass(frozen=True)
class HeadPose:
    """A head rotation in degrees: yaw > 0 turns the face toward the image's right, pitch > 0 up."""

    yaw: float = 0.0
    pitch: float = 0.0


class HeadModel:
    """One face's head: nodes with depth and motion weight over ``rect``, rotated per pose."""

    def __init__(self, face: FaceGeometry, person: np.ndarray | None, image_shape: tuple[int, ...],
                 reach: HeadPose = HeadPose(20.0, 8.0), step: int = NODE_STEP):
        if face.landmarks_3d is None:
            raise ValueError("the head turn needs FaceMesh's 3D landmarks")
        points = face.landmarks_3d
        self.face_width = float(face.size[0])
        left, right = points[_CHEEKS[0]], points[_CHEEKS[1]]
        self.axis = (left + right) / 2                     # x, y, z of the rotation centre
        height, width = image_shape[:2]
        widest = BAND[1] * self.face_width
        region_box = self._ellipse_box(face)
        x0 = max(0, math.floor(region_box[0] - widest - 2 * step))
        y0 = max(0, math.floor(region_box[1] - widest - 2 * step))
        x1 = min(width, math.ceil(region_box[2] + widest + 2 * step))
        y1 = min(height, math.ceil(region_box[3] + widest + 2 * step))
        self.rect = Rect(x0, y0, x1 - x0, y1 - y0)
        self.step = step
        self.nodes_x = np.unique(np.r_[np.arange(0, self.rect.width, step), self.rect.width - 1])
        self.nodes_y = np.unique(np.r_[np.arange(0, self.rect.height, step), self.rect.height - 1])
        grid_x, grid_y = np.meshgrid(self.nodes_x, self.nodes_y)
        self.src_x = (grid_x + self.rect.x).astype(np.float64).ravel()
        self.src_y = (grid_y + self.rect.y).astype(np.float64).ravel()
        region = self._region(face, person)
        self.depth = self._depth(points, region, grid_x, grid_y).ravel()   # z - axis z: < 0 toward the viewer
        self.weight = np.ones_like(self.depth)
        weight = self._weight(region, reach)
        self.weight = weight[grid_y, grid_x].astype(np.float64).ravel()
        self.weight[(grid_x == 0).ravel() | (grid_y == 0).ravel()] = 0.0
        self.weight[(grid_x == self.rect.width - 1).ravel() | (grid_y == self.rect.height - 1).ravel()] = 0.0
        self.triangles = self._triangles(len(self.nodes_x), len(self.nodes_y))
        ys, xs = np.mgrid[self.rect.slices].astype(np.float32)
        self._identity_x, self._identity_y = xs, ys
        # What may change: the pixels the moving triangles cover at rest (rect frame).
        rest, _ = rasterise(self.src_x - self.rect.x, self.src_y - self.rect.y, self.triangles,
                            self.rect.width, self.rect.height, np.zeros(len(self.src_x)), ())
        self.changed = np.zeros(self.rect.height * self.rect.width, bool)
        self.changed[rest] = True
        self.changed = self.changed.reshape(self.rect.height, self.rect.width)

    # ------------------------------------------------------------------------- per pose

    def move(self, x: np.ndarray, y: np.ndarray, dz: np.ndarray, weight: np.ndarray,
             pose: HeadPose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where points (portrait pixels, depth relative to the axis) go: x, y and a depth to sort by."""
        yaw, pitch = math.radians(pose.yaw), math.radians(pose.pitch)
        cx, cy, _ = self.axis
        ry = y - cy
        y1 = cy + ry * math.cos(pitch) + dz * math.sin(pitch)
        z1 = -ry * math.sin(pitch) + dz * math.cos(pitch)
        rx = x - cx
        x2 = cx + rx * math.cos(yaw) - z1 * math.sin(yaw)
        z2 = rx * math.sin(yaw) + z1 * math.cos(yaw)
        out_x = x + weight * (x2 - x)
        out_y = y + weight * (y1 - y)
        order = np.where(weight > 0, z2 + (1 - weight) * BACKGROUND_DEPTH, _FAR)
        return out_x, out_y, order

    def surface(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Depth (relative to the axis) and motion weight at portrait points (N, 2), bilinear between nodes."""
        columns, rows = len(self.nodes_x), len(self.nodes_y)
        x = np.interp(points[:, 0] - self.rect.x, self.nodes_x, np.arange(columns))
        y = np.interp(points[:, 1] - self.rect.y, self.nodes_y, np.arange(rows))
        x0 = np.clip(np.floor(x).astype(int), 0, max(columns - 2, 0))
        y0 = np.clip(np.floor(y).astype(int), 0, max(rows - 2, 0))
        fx, fy = x - x0, y - y0

        def bilinear(values: np.ndarray) -> np.ndarray:
            grid = values.reshape(rows, columns)
            top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
            bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
            return top * (1 - fy) + bottom * fy

        return bilinear(self.depth), bilinear(self.weight)

    def move_points(self, points: np.ndarray, pose: HeadPose) -> np.ndarray:
        """Where portrait points (N, 2) go under ``pose``."""
        depth, weight = self.surface(points)
        x, y, _ = self.move(points[:, 0], points[:, 1], depth, weight, pose)
        return np.stack([x, y], axis=1)

    def backward_map(self, pose: HeadPose) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y) over ``rect``: the portrait pixel each output pixel shows (z-buffered)."""
        out_x, out_y, order = self.move(self.src_x, self.src_y, self.depth, self.weight, pose)
        pixel, (src_x, src_y) = rasterise(out_x - self.rect.x, out_y - self.rect.y, self.triangles,
                                          self.rect.width, self.rect.height, order, (self.src_x, self.src_y))
        map_x, map_y = self._identity_x.copy(), self._identity_y.copy()
        map_x.ravel()[pixel] = src_x
        map_y.ravel()[pixel] = src_y
        return map_x, map_y

    # ------------------------------------------------------------------------- set-up

    @staticmethod
    def _ellipse(face: FaceGeometry) -> tuple[float, float, float, float]:
        """Centre and semi-axes of the ellipse that bounds the head (hair and hat included)."""
        (cx, cy), (fw, fh) = face.center, face.size
        return cx, cy - HEAD_LIFT * fh, HEAD_ELLIPSE[0] * fw, HEAD_ELLIPSE[1] * fh

    def _ellipse_box(self, face: FaceGeometry) -> tuple[float, float, float, float]:
        cx, cy, ax, ay = self._ellipse(face)
        return cx - ax, cy - ay, cx + ax, cy + ay

    def _region(self, face: FaceGeometry, person: np.ndarray | None) -> np.ndarray:
        """uint8 mask over rect: the person inside the head ellipse, plus the whole face."""
        rows, cols = self.rect.slices
        cx, cy, ax, ay = self._ellipse(face)
        ys, xs = np.mgrid[rows, cols].astype(np.float32)
        inside = ((xs - cx) / ax) ** 2 + ((ys - cy) / ay) ** 2 <= 1
        if person is not None:  # its outline smoothed: a ragged one would ripple the hair as it moves
            smooth = cv2.GaussianBlur(person[rows, cols], (0, 0), OUTLINE_SMOOTH * self.face_width)
            inside &= smooth >= 0.5
        region = inside
        region = region.astype(np.uint8)
        oval = face.landmarks_3d[face_oval(), :2] - (self.rect.x, self.rect.y)
        cv2.fillPoly(region, [np.round(oval).astype(np.int32)], 1)
        count, labels, _stats, _ = cv2.connectedComponentsWithStats(region, connectivity=8)
        if count > 2:  # keep the part joined to the face (stray bits of the segmentation stay still)
            centre = np.round(np.array(face.center) - (self.rect.x, self.rect.y)).astype(int)
            centre = np.clip(centre, 0, [region.shape[1] - 1, region.shape[0] - 1])
            keep = labels[centre[1], centre[0]]
            if keep > 0:
                region = (labels == keep).astype(np.uint8)
        return region

    def _weight(self, region: np.ndarray, reach: HeadPose) -> np.ndarray:
        """Motion weight over rect: 1 in the head region, fading to 0 over a band outside it that is
        wide enough where the region's edge moves far (a chin in front of the neck) not to fold."""
        inner = cv2.erode(region, np.ones((3, 3), np.uint8))
        edge_y, edge_x = np.nonzero(region - inner)
        edge = np.stack([edge_x + self.rect.x, edge_y + self.rect.y], axis=1).astype(np.float64)
        depth, _ = self.surface(edge)
        full = np.ones(len(edge))
        moved = np.zeros(len(edge))
        for pose in (HeadPose(reach.yaw, 0), HeadPose(-reach.yaw, 0), HeadPose(0, reach.pitch),
                     HeadPose(0, -reach.pitch)):
            x, y, _ = self.move(edge[:, 0], edge[:, 1], depth, full, pose)
            moved = np.maximum(moved, np.hypot(x - edge[:, 0], y - edge[:, 1]))
        low, high = BAND[0] * self.face_width, BAND[1] * self.face_width
        widths = np.zeros(region.shape, np.float64)
        widths[edge_y, edge_x] = np.clip(FOLD_MARGIN * moved, low, high)
        outside, nearest = cv2.distanceTransformWithLabels((region == 0).astype(np.uint8), cv2.DIST_L2, 5,
                                                           labelType=cv2.DIST_LABEL_PIXEL)
        by_label = np.full(nearest.max() + 1, low)
        by_label[nearest[edge_y, edge_x]] = widths[edge_y, edge_x]
        band = by_label[nearest]
        return 1 - smoothstep(outside / band)

    def _depth(self, points: np.ndarray, region: np.ndarray, grid_x: np.ndarray,
               grid_y: np.ndarray) -> np.ndarray:
        """Depth relative to the axis at every node: the landmarks' surface over the face, easing
        back to the axis depth at the head region's edge (the outline turns about itself)."""
        keep = np.ones(len(points), bool)
        keep[_IRISES] = False
        xy = (points[keep, :2] - (self.rect.x, self.rect.y)) / self.step   # node-grid units
        z = points[keep, 2] - self.axis[2]
        surface = np.full(grid_x.shape, np.nan)
        pixel, (values,) = rasterise(xy[:, 0], xy[:, 1], delaunay(xy), grid_x.shape[1], grid_x.shape[0],
                                     np.zeros(len(xy)), (z,))
        surface.ravel()[pixel] = values
        # The face is inside its oval (the triangulation also spans the background between jaw and temple).
        oval = np.zeros(grid_x.shape, np.uint8)
        outline = (points[face_oval(), :2] - (self.rect.x, self.rect.y)) / self.step
        cv2.fillPoly(oval, [np.round(outline * 16).astype(np.int32)], 1, shift=4)
        hull = np.isfinite(surface) & (oval > 0)
        face = np.where(hull, surface, 0.0)
        # Beyond the landmarks: the depth along the face's edge (a thin ring inside it, smoothed along
        # the edge so no streaks run out from single landmarks), eased to 0 at the region's edge.
        hull8 = hull.astype(np.uint8)
        ring = (hull8 - cv2.erode(hull8, np.ones((5, 5), np.uint8))).astype(np.float64)
        reach = EDGE_SMOOTH * self.face_width / self.step
        weight = cv2.GaussianBlur(ring, (0, 0), reach)
        spread = cv2.GaussianBlur(face * ring, (0, 0), reach) / np.maximum(weight, 1e-9)
        _, nearest = cv2.distanceTransformWithLabels((weight < 1e-3).astype(np.uint8), cv2.DIST_L2, 5,
                                                     labelType=cv2.DIST_LABEL_PIXEL)
        known = weight >= 1e-3
        values = np.zeros(nearest.max() + 1)
        values[nearest[known]] = spread[known]
        spread = np.where(known, spread, values[nearest])   # far from the ring: its nearest smoothed value
        node_region = region[grid_y, grid_x]
        from_hull = cv2.distanceTransform((~hull).astype(np.uint8), cv2.DIST_L2, 5)
        to_edge = cv2.distanceTransform(node_region, cv2.DIST_L2, 5)
        t = np.clip(from_hull / np.maximum(from_hull + to_edge, 1e-6), 0, 1)
        t = np.where(hull, 0.0, cv2.GaussianBlur(t, (0, 0), OUTLINE_SMOOTH * self.face_width / self.step))
        outer = np.where(node_region > 0, spread * np.sqrt(np.clip(1 - t * t, 0.0, None)), 0.0)
        depth = np.where(hull, face, outer)
        sigma = SMOOTH * self.face_width / self.step
        return cv2.GaussianBlur(depth, (0, 0), sigma)

    def _triangles(self, columns: int, rows: int) -> np.ndarray:
        """Node index triples of the grid's triangles that can move (any vertex with weight > 0)."""
        index = np.arange(rows * columns).reshape(rows, columns)
        a, b = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
        c, d = index[1:, :-1].ravel(), index[1:, 1:].ravel()
        triangles = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])
        moving = (self.weight[triangles] > 0).any(axis=1)
        return triangles[moving]


def rasterise(out_x: np.ndarray, out_y: np.ndarray, triangles: np.ndarray, width: int, height: int,
              order: np.ndarray, values: tuple[np.ndarray, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw triangles (node positions ``out_x``/``out_y`` in pixels of a width x height grid) with a
    z-buffer on the nodes' ``order`` (smaller is nearer; each triangle at its vertices' mean, as
    the triangles are small against the depth steps that hide one surface behind another).

    Returns the flat indices of the covered pixels and, for each, every array of ``values`` (one
    value per node) interpolated in the nearest triangle covering that pixel.
    """
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    ax, ay, bx, by, cx, cy = out_x[a], out_y[a], out_x[b], out_y[b], out_x[c], out_y[c]
    e1x, e1y, e2x, e2y = bx - ax, by - ay, cx - ax, cy - ay
    det = e1x * e2y - e2x * e1y
    x0 = np.maximum(np.ceil(np.minimum(np.minimum(ax, bx), cx)), 0)
    x1 = np.minimum(np.floor(np.maximum(np.maximum(ax, bx), cx)), width - 1)
    y0 = np.maximum(np.ceil(np.minimum(np.minimum(ay, by), cy)), 0)
    y1 = np.minimum(np.floor(np.maximum(np.maximum(ay, by), cy)), height - 1)
    usable = (x1 >= x0) & (y1 >= y0) & (np.abs(det) > 1e-9)
    det = np.where(usable, det, 1.0)
    # Barycentric coordinates (u toward b, v toward c) as affine functions of the pixel.
    u_x, u_y = e2y / det, -e2x / det
    v_x, v_y = -e1y / det, e1x / det
    u_c = -(u_x * ax + u_y * ay)
    v_c = -(v_x * ax + v_y * ay)
    u_0 = (u_c + u_x * x0 + u_y * y0).astype(np.float32)    # at the bounding box's corner
    v_0 = (v_c + v_x * x0 + v_y * y0).astype(np.float32)
    ux32, uy32, vx32, vy32 = (w.astype(np.float32) for w in (u_x, u_y, v_x, v_y))
    box_w = (x1 - x0 + 1).astype(np.int64)
    box_h = (y1 - y0 + 1).astype(np.int64)
    corner = (y0 * width + x0).astype(np.int64)
    code = np.where(usable, box_w * (height + 2) + box_h, -1)
    shapes, inverse = np.unique(code, return_inverse=True)
    order_groups = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order_groups], np.arange(len(shapes) + 1))
    pixels, found = [], []
    eps = np.float32(1e-5)
    for group, shape in enumerate(shapes):
        if shape < 0:
            continue
        bw, bh = int(shape // (height + 2)), int(shape % (height + 2))
        chosen = order_groups[bounds[group]:bounds[group + 1]]
        ox = np.tile(np.arange(bw, dtype=np.float32), bh)
        oy = np.repeat(np.arange(bh, dtype=np.float32), bw)
        u = u_0[chosen, None] + ux32[chosen, None] * ox + uy32[chosen, None] * oy
        v = v_0[chosen, None] + vx32[chosen, None] * ox + vy32[chosen, None] * oy
        inside = u >= -eps
        inside &= v >= -eps
        u += v
        inside &= u <= 1 + eps
        hit = np.flatnonzero(inside)
        offsets = (np.arange(bh)[:, None] * width + np.arange(bw)[None, :]).ravel()
        t = chosen[hit // (bw * bh)]
        found.append(t)
        pixels.append(corner[t] + offsets[hit % (bw * bh)])
    if not pixels:
        return np.zeros(0, np.int64), [np.zeros(0) for _ in values]
    pixel, t = np.concatenate(pixels), np.concatenate(found)
    depth = ((order[a] + order[b] + order[c]) / 3)[t]
    nearest = np.full(width * height, np.inf)
    np.minimum.at(nearest, pixel, depth)
    win = depth <= nearest[pixel]
    pixel, t = pixel[win], t[win]
    px, py = (pixel % width).astype(np.float64), (pixel // width).astype(np.float64)
    results = []
    for node_values in values:
        base, to_b, to_c = node_values[a], node_values[b] - node_values[a], node_values[c] - node_values[a]
        k_0 = base + to_b * u_c + to_c * v_c           # value = k_0 + k_x * x + k_y * y in each triangle
        k_x = to_b * u_x + to_c * v_x
        k_y = to_b * u_y + to_c * v_y
        results.append(k_0[t] + k_x[t] * px + k_y[t] * py)
    return pixel, results


@functools.cache
def face_oval() -> list[int]:
    """FaceMesh's face outline landmarks, in order around the face."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    following = dict(FACEMESH_FACE_OVAL)
    order = [next(iter(following))]
    while following[order[-1]] != order[0]:
        order.append(following[order[-1]])
    return order


def delaunay(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (M, 3) of indices into points (N, 2)."""
    low, high = points.min(axis=0) - 1, points.max(axis=0) + 1
    subdiv = cv2.Subdiv2D((math.floor(low[0]), math.floor(low[1]),
                           math.ceil(high[0] - low[0]) + 1, math.ceil(high[1] - low[1]) + 1))
    index = {}
    for i, (x, y) in enumerate(points.astype(np.float32)):
        subdiv.insert((float(x), float(y)))
        index.setdefault((float(x), float(y)), i)
    triangles = []
    for corners in subdiv.getTriangleList().astype(np.float32).reshape(-1, 3, 2):
        ids = [index.get((float(x), float(y)), -1) for x, y in corners]
        if min(ids) >= 0:  # drop triangles on Subdiv2D's virtual outer vertices
            triangles.append(ids)
    return np.array(triangles, dtype=np.int64).reshape(-1, 3)


def segment_person(image: np.ndarray, faces: list[FaceGeometry]) -> np.ndarray:
    """The person's mask (float32 0..1, image size) from MediaPipe's selfie segmentation, run on a
    square around the faces (its model sees 256 px, so a tighter crop gives a finer outline)."""
    import mediapipe as mp

    from monalisa.mp_quiet import quiet_stderr

    height, width = image.shape[:2]
    x0 = min(f.box[0] for f in faces)
    y0 = min(f.box[1] for f in faces)
    x1 = max(f.box[2] for f in faces)
    y1 = max(f.box[3] for f in faces)
    side = 2.4 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    mask = np.zeros((height, width), np.float32)
    with quiet_stderr(), mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        result = segmenter.process(np.ascontiguousarray(image[top:bottom, left:right]))
    if result.segmentation_mask is not None:
        mask[top:bottom, left:right] = result.segmentation_mask
    return mask
