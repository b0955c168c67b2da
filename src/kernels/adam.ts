/**
 * One AdamW step on a float32 tensor, in place (Loshchilov & Hutter: decoupled weight decay).
 * `step` counts from 1; m and v are the optimizer's first and second moments, same length.
 */
export interface AdamConfig {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export function adamStep(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, step: number, cfg: AdamConfig): void {
  const b1 = cfg.beta1 ?? 0.9;
  const b2 = cfg.beta2 ?? 0.999;
  const eps = cfg.eps ?? 1e-8;
  const wd = cfg.weightDecay ?? 0;
  const c1 = 1 / (1 - b1 ** step);
  const c2 = 1 / (1 - b2 ** step);
  for (let i = 0; i < param.length; i++) {
    const g = grad[i];
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    param[i] -= cfg.lr * ((m[i] * c1) / (Math.sqrt(v[i] * c2) + eps) + wd * param[i]);
  }
}
