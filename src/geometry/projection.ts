/**
 * Tilt-series geometry: projection matrices from angles (numerics.md §4.3), the depth of a point
 * and the visibility test (§4.5). The kernel projects points inline (particleKernel.ts).
 */
import {
  Mat4,
  Vec3,
  applyPoint4,
  embed3in4,
  mul3,
  mul4,
  rotationX,
  rotationY,
  rotationZ,
  translation4,
} from './matrix.js';

export interface TiltAngles {
  xTilt: number; // degrees
  yTilt: number;
  zRot: number;
  xShiftAngst: number;
  yShiftAngst: number;
}

/**
 * P = T(shift/px + (⌊W/2⌋, ⌊H/2⌋, 0)) · Rz(zrot)·Ry(ytilt)·Rx(xtilt) · T(−(⌊w0/2⌋, ⌊h0/2⌋, ⌊d0/2⌋)).
 * The integer halves here differ from the floating tomogram centre used for coordinates ([Q21]).
 */
export function projectionFromAngles(
  a: TiltAngles,
  pixelSize: number,
  imageW: number,
  imageH: number,
  tomoSize: Vec3,
): Mat4 {
  const rot = mul3(rotationZ(a.zRot), mul3(rotationY(a.yTilt), rotationX(a.xTilt)));
  const pre = translation4([-Math.trunc(tomoSize[0] / 2), -Math.trunc(tomoSize[1] / 2), -Math.trunc(tomoSize[2] / 2)]);
  const post = translation4([
    a.xShiftAngst / pixelSize + Math.trunc(imageW / 2),
    a.yShiftAngst / pixelSize + Math.trunc(imageH / 2),
    0,
  ]);
  return mul4(post, mul4(embed3in4(rot), pre));
}

/** Strict inequality on all four sides, radius in unbinned pixels. */
export function isVisible(u: number, v: number, imageW: number, imageH: number, radius: number): boolean {
  return u > radius && u < imageW - radius && v > radius && v < imageH - radius;
}

/** Depth of p relative to the tomogram centre c along the beam in frame P (Tomogram::getDepthOffset). */
export function depthOffset(P: Mat4, p: Vec3, centre: Vec3): number {
  return applyPoint4(P, p)[2] - applyPoint4(P, centre)[2];
}
