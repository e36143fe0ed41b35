// The few ONNX protobuf pieces the merge kernels need (a node, a typed input/output, a model), over onnx-proto.
// TODO(builder): switch to src/formats/onnx.ts once it lands, and delete this file.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export const ElemType = { float: 1, double: 11 } as const;
type ElemName = keyof typeof ElemType;

export interface GraphNode {
  op: string;
  inputs: string[];
  outputs: string[];
  ints?: Record<string, number>;
}

export interface GraphValue {
  name: string;
  type: ElemName;
  dims: (number | string)[];
}

export function encodeModel(nodes: GraphNode[], inputs: GraphValue[], outputs: GraphValue[], opset = 17): Uint8Array {
  const valueInfo = (v: GraphValue) => ({
    name: v.name,
    type: {
      tensorType: {
        elemType: ElemType[v.type],
        shape: { dim: v.dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'loraforge-merge',
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: 'kernel',
      node: nodes.map((n) => ({
        opType: n.op,
        name: `${n.op}_${n.outputs[0]}`,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.ints ?? {}).map(([name, i]) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i })),
      })),
      input: inputs.map(valueInfo),
      output: outputs.map(valueInfo),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
