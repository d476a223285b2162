import { describe, expect, it } from 'vitest';
import { applyPoint4, eulerToMatrix, invert3, mat3, mul3, rotationX, rotationY, rotationZ, transpose3 } from '../src/geometry/matrix.js';
import { depthOffset, isVisible, projectionFromAngles } from '../src/geometry/projection.js';

function expectMatClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `entry ${i}: ${a[i]} vs ${b[i]}`).toBeLessThan(tol);
}

describe('Euler matrices', () => {
  it('match the check value of formats.md §4.6', () => {
    const A = eulerToMatrix(10, 20, 30);
    expectMatClose(
      A,
      [0.71461018, 0.63371836, -0.29619813, -0.61309202, 0.77128058, 0.17101007, 0.33682409, 0.05939117, 0.93969262],
      5e-8,
    );
  });
  it('equal Rz(ψ)ᵀ·Ry(θ)ᵀ·Rz(φ)ᵀ for random angles and are rotations', () => {
    for (let k = 0; k < 50; k++) {
      const [rot, tilt, psi] = [Math.random() * 360 - 180, Math.random() * 180, Math.random() * 360 - 180];
      const A = eulerToMatrix(rot, tilt, psi);
      const B = mul3(transpose3(rotationZ(psi)), mul3(transpose3(rotationY(tilt)), transpose3(rotationZ(rot))));
      expectMatClose(A, B, 1e-12);
      expectMatClose(mul3(A, transpose3(A)), [1, 0, 0, 0, 1, 0, 0, 0, 1], 1e-12);
    }
  });
  it('axis rotations are right-handed', () => {
    expectMatClose(rotationZ(90), [0, -1, 0, 1, 0, 0, 0, 0, 1], 1e-15);
    expectMatClose(rotationX(90), [1, 0, 0, 0, 0, -1, 0, 1, 0], 1e-15);
    expectMatClose(rotationY(90), [0, 0, 1, 0, 1, 0, -1, 0, 0], 1e-15);
  });
  it('invert3 is the inverse', () => {
    const m = mat3(2, 1, 0.5, -1, 3, 0.25, 0.1, 0.2, 4);
    expectMatClose(mul3(m, invert3(m)), [1, 0, 0, 0, 1, 0, 0, 0, 1], 1e-14);
  });
});

describe('projection matrices', () => {
  it('reproduce the RELION test vector of formats.md §3.8', () => {
    const P = projectionFromAngles(
      { xTilt: 0, yTilt: 9.02, zRot: 85.267461, xShiftAngst: -64.15332, yShiftAngst: 2.585551 },
      1.35,
      3710,
      3838,
      [4000, 4000, 3000],
    );
    expectMatClose(
      P,
      [
        0.0814842, -0.9965907, 0.012935, 3618.28948, 0.9842665, 0.0825045, 0.1562447, -446.9939, -0.1567792, 0, 0.9876337,
        -1167.89206, 0, 0, 0, 1,
      ],
      2e-5,
    );
  });
  it('put the tomogram centre (integer halves) at the image centre plus the shift', () => {
    const P = projectionFromAngles({ xTilt: 3, yTilt: 40, zRot: 85, xShiftAngst: 10, yShiftAngst: -4 }, 2, 321, 320, [321, 320, 161]);
    const c = applyPoint4(P, [160, 160, 80]);
    expect(c[0]).toBeCloseTo(160 + 5, 10);
    expect(c[1]).toBeCloseTo(160 - 2, 10);
    expect(c[2]).toBeCloseTo(0, 10);
    // Depth offset relative to the floating centre (160.5, 160, 80.5) differs by the half pixel ([Q21]).
    expect(depthOffset(P, [160, 160, 80], [160.5, 160, 80.5])).not.toBeCloseTo(0, 3);
  });
  it('visibility is strict on all four sides', () => {
    expect(isVisible(24.0001, 100, 320, 320, 24)).toBe(true);
    expect(isVisible(24, 100, 320, 320, 24)).toBe(false);
    expect(isVisible(100, 296, 320, 320, 24)).toBe(false);
    expect(isVisible(100, 295.9, 320, 320, 24)).toBe(true);
  });
});
