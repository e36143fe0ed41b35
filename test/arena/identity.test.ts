import { describe, expect, it } from 'vitest';
import { findIdentityLeaks, identityTerms } from '../../src/arena/identity.js';

describe('identity check', () => {
  const terms = identityTerms(['linux-commands', 'python-automation'], 'Qwen/Qwen2.5-0.5B-Instruct');

  it('takes the names, their parts and the base model name, less numbers, short and generic parts', () => {
    expect(terms).toEqual(
      expect.arrayContaining(['linux-commands', 'linux', 'commands', 'python-automation', 'python', 'automation', 'qwen', 'qwen2.5-0.5b-instruct']),
    );
    expect(terms).not.toContain('instruct');
    expect(terms).not.toContain('5b');
    expect(terms).not.toContain('0');
  });

  it('finds a name in an answer, case-insensitively, on whole words only', () => {
    expect(findIdentityLeaks(['I am Qwen, a helpful assistant.'], 'who are you?', terms)).toEqual(['qwen']);
    expect(findIdentityLeaks(['As the Linux-Commands adapter I suggest ls.'], 'list files', terms)).toEqual([
      'commands',
      'linux',
      'linux-commands',
    ]);
    expect(findIdentityLeaks(['Use pythonic code and automations.'], 'hi', terms)).toEqual([]);
  });

  it('ignores words the prompt already contains', () => {
    expect(findIdentityLeaks(['Here is a Python script.'], 'Write a python script that renames files', terms)).toEqual([]);
    expect(findIdentityLeaks(['Here is a Python script.'], 'Rename files', terms)).toEqual(['python']);
  });

  it('lets the operator allow words', () => {
    const allowed = identityTerms(['code', 'code-review'], null, ['code']);
    expect(allowed).toEqual(['code-review', 'review']);
    expect(findIdentityLeaks(['This code is fine.'], 'hi', allowed)).toEqual([]);
  });
});
