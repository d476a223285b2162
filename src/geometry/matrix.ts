/**
 * Small dense matrices as row-major Float64Arrays: Mat3 has 9 entries, Mat4 has 16.
 * M(i,j) = m[i*n + j]; vectors are columns, so M·v is the usual product (numerics.md §0.3).
 */
export type Mat3 = Float64Array;
export type Mat4 = Float64Array;
export type Vec3 = [number, number, number];

export const DEG2RAD = 3.14159265358979323846 / 180;

export function mat3(...rowMajor: number[]): Mat3 {
  return Float64Array.from(rowMajor);
}

export function identity3(): Mat3 {
  return mat3(1, 0, 0, 0, 1, 0, 0, 0, 1);
}

export function identity4(): Mat4 {
  const m = new Float64Array(16);
  m[0] = m[5] = m[10] = m[15] = 1;
  return m;
}

export function mul3(a: Mat3, b: Mat3): Mat3 {
  const r = new Float64Array(9);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      r[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
    }
  }
  return r;
}

export function mul4(a: Mat4, b: Mat4): Mat4 {
  const r = new Float64Array(16);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[i * 4 + k] * b[k * 4 + j];
      r[i * 4 + j] = s;
    }
  }
  return r;
}

export function apply3(m: Mat3, v: Vec3): Vec3 {
  return [
    m[0] * v[0] + m[1] * v[1] + m[2] * v[2],
    m[3] * v[0] + m[4] * v[1] + m[5] * v[2],
    m[6] * v[0] + m[7] * v[1] + m[8] * v[2],
  ];
}

/** Homogeneous point transform: returns the first three components of M·(p, 1). */
export function applyPoint4(m: Mat4, p: Vec3): Vec3 {
  return [
    m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3],
    m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7],
    m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11],
  ];
}

export function transpose3(m: Mat3): Mat3 {
  return mat3(m[0], m[3], m[6], m[1], m[4], m[7], m[2], m[5], m[8]);
}

export function det3(m: Mat3): number {
  return (
    m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6])
  );
}

/** Inverse as adjugate / determinant, the way RELION's t3Matrix::invert computes it. */
export function invert3(m: Mat3): Mat3 {
  const d = det3(m);
  return mat3(
    (m[4] * m[8] - m[5] * m[7]) / d,
    (m[2] * m[7] - m[1] * m[8]) / d,
    (m[1] * m[5] - m[2] * m[4]) / d,
    (m[5] * m[6] - m[3] * m[8]) / d,
    (m[0] * m[8] - m[2] * m[6]) / d,
    (m[2] * m[3] - m[0] * m[5]) / d,
    (m[3] * m[7] - m[4] * m[6]) / d,
    (m[1] * m[6] - m[0] * m[7]) / d,
    (m[0] * m[4] - m[1] * m[3]) / d,
  );
}

export function translation4(t: Vec3): Mat4 {
  const m = identity4();
  m[3] = t[0];
  m[7] = t[1];
  m[11] = t[2];
  return m;
}

export function embed3in4(r: Mat3): Mat4 {
  const m = identity4();
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) m[i * 4 + j] = r[i * 3 + j];
  return m;
}

/** Active right-handed rotation about a coordinate axis by `deg` degrees (numerics.md §0.3). */
export function rotationX(deg: number): Mat3 {
  const a = deg * DEG2RAD;
  const c = Math.cos(a);
  const s = Math.sin(a);
  return mat3(1, 0, 0, 0, c, -s, 0, s, c);
}

export function rotationY(deg: number): Mat3 {
  const a = deg * DEG2RAD;
  const c = Math.cos(a);
  const s = Math.sin(a);
  return mat3(c, 0, s, 0, 1, 0, -s, 0, c);
}

export function rotationZ(deg: number): Mat3 {
  const a = deg * DEG2RAD;
  const c = Math.cos(a);
  const s = Math.sin(a);
  return mat3(c, -s, 0, s, c, 0, 0, 0, 1);
}

/** RELION's ZYZ Euler matrix (Euler::anglesToMatrix3), angles in degrees: A = Rz(ψ)ᵀ·Ry(θ)ᵀ·Rz(φ)ᵀ. */
export function eulerToMatrix(rotDeg: number, tiltDeg: number, psiDeg: number): Mat3 {
  const phi = rotDeg * DEG2RAD;
  const theta = tiltDeg * DEG2RAD;
  const psi = psiDeg * DEG2RAD;
  const ca = Math.cos(phi);
  const sa = Math.sin(phi);
  const cb = Math.cos(theta);
  const sb = Math.sin(theta);
  const cg = Math.cos(psi);
  const sg = Math.sin(psi);
  return mat3(
    cg * cb * ca - sg * sa,
    cg * cb * sa + sg * ca,
    -cg * sb,
    -sg * cb * ca - cg * sa,
    -sg * cb * sa + cg * ca,
    sg * sb,
    sb * ca,
    sb * sa,
    cb,
  );
}
