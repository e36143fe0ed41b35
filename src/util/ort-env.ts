// ONNX Runtime's telemetry stays off unless the user asks for it. Since 1.29 its Linux and macOS builds send usage
// events to Microsoft (1DS) and leave `.ses` and `mat-debug-<pid>.log` files in the temp dir; loraforge runs on its
// users' machines with their models and sends nothing anywhere of its own accord (ORT_DISABLE_TELEMETRY=0 restores
// ONNX Runtime's default). ORT reads the variable from the process environment when it creates its own, at the first
// session; a worker thread's process.env is a private copy that never reaches it. So this is set on the main thread,
// by onnxruntime.ts (the one module that loads ONNX Runtime) and by startWorker before it starts a thread that may;
// kept apart from onnxruntime.ts so that startWorker does not load ONNX Runtime.
import { isMainThread } from 'node:worker_threads';

if (isMainThread) process.env.ORT_DISABLE_TELEMETRY ??= '1';
