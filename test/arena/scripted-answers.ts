// A stand-in for the inference engine's compare(): the engine (serving helper) has not landed yet, and these
// tests are about battles and votes, not generation. Each model gets a fixed answer that names no adapter;
// `override` makes one answer say something chosen (e.g. its own name). Records every call.
import type { AnswerGenerator, GeneratedAnswer, SamplingSettings } from '../../src/arena/types.js';

export class ScriptedAnswers implements AnswerGenerator {
  readonly calls: { prompt: string; models: readonly string[]; sampling: SamplingSettings }[] = [];
  private readonly overrides = new Map<string, string>();

  static textFor(model: string): string {
    return `Answer number ${[...model].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 9973, 7)}: first check the logs.`;
  }

  override(model: string, text: string): void {
    this.overrides.set(model, text);
  }

  async compare(prompt: string, models: readonly string[], sampling: SamplingSettings): Promise<GeneratedAnswer[]> {
    this.calls.push({ prompt, models, sampling });
    return models.map((m) => ({ text: this.overrides.get(m) ?? ScriptedAnswers.textFor(m), finishReason: 'stop' }));
  }
}
