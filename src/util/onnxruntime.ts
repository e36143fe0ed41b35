// ONNX Runtime as every module of ours loads it: through here, so that its telemetry is off before any session
// exists (ort-env.ts says why). eslint refuses `onnxruntime-node` imported anywhere else.
import ort from 'onnxruntime-node';
import './ort-env.js';

export default ort;
