// sameBaseModel: the one rule by which merging, serving and the arena decide that adapters share a base model.
import { describe, expect, it } from 'vitest';
import { baseModelKey, sameBaseModel } from '../../src/formats/peft.js';

describe('sameBaseModel', () => {
  it("takes HF's legacy root-level ids, their org-prefixed moves, case and local paths as one model", () => {
    expect(sameBaseModel('gpt2', 'openai-community/gpt2')).toBe(true);
    expect(sameBaseModel('bert-base-uncased', 'google-bert/bert-base-uncased')).toBe(true);
    expect(sameBaseModel('HuggingFaceTB/SmolLM2-135M-Instruct', 'huggingfacetb/smollm2-135m-instruct')).toBe(true);
    expect(sameBaseModel('/models/gpt2/', 'gpt2')).toBe(true);
    expect(sameBaseModel('C:\\models\\gpt2\\', 'openai-community/gpt2')).toBe(true);
    expect(baseModelKey('openai-community/gpt2/')).toBe('gpt2');
  });

  it('tells different models apart', () => {
    expect(sameBaseModel('gpt2', 'gpt2-medium')).toBe(false);
    expect(sameBaseModel('openai-community/gpt2', 'distilbert/distilgpt2')).toBe(false);
    expect(sameBaseModel('meta-llama/Llama-3.2-1B', 'meta-llama/Llama-3.2-1B-Instruct')).toBe(false);
  });
});
