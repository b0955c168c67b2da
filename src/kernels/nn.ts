// The compute kernels' public surface (re-exported by src/index.ts): pure, synchronous, float32.
export { matmul, type MatmulOptions } from './matmul.js';
export { geluForward, geluBackward, siluForward, siluBackward, swigluForward, swigluBackward } from './activations.js';
export { softmaxForward, softmaxBackward } from './softmax.js';
export { layerNormForward, layerNormBackward, rmsNormForward, rmsNormBackward, type LayerNormSaved } from './norms.js';
export { attentionForward, attentionBackward, type AttentionShape } from './attention.js';
export { addBias, biasGrad } from './bias.js';
export { adamStep, type AdamConfig } from './adam.js';
export { KernelPool, type KernelPoolOptions } from './pool/kernel-pool.js';
