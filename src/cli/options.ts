// Option parsers shared by the CLI commands: a bad value is a LoraforgeError, so it prints one line and exits 2.
import { InvalidInputError } from '../errors.js';

export function numberOption(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidInputError(`${flag} must be a number, got "${value}"`);
    return n;
  };
}

export function integerOption(flag: string, min = 0) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidInputError(`${flag} must be a whole number >= ${min}, got "${value}"`);
    return n;
  };
}

export function numberListOption(flag: string) {
  return (value: string): number[] =>
    value.split(',').map((part) => {
      const n = Number(part.trim());
      if (part.trim() === '' || !Number.isFinite(n)) throw new InvalidInputError(`${flag} takes numbers separated by commas (e.g. 0.5,0.3,0.2), got "${value}"`);
      return n;
    });
}

/** Rows of numbers: "1,0.5,1;0.8,1,1" (rows separated by semicolons, numbers by commas). */
export function numberRowsOption(flag: string) {
  const row = numberListOption(flag);
  return (value: string): number[][] => {
    try {
      return value.split(';').map(row);
    } catch {
      throw new InvalidInputError(`${flag} takes rows of numbers, rows separated by ";" and numbers by "," (e.g. 1,0.5,1;0.8,1,1), got "${value}"`);
    }
  };
}

export function choiceOption<T extends string>(flag: string, choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidInputError(`${flag} must be one of ${choices.join(', ')}, got "${value}"`);
    return value as T;
  };
}

/** "5GB", "500MB", "2GiB" or a plain byte count. */
export function sizeOption(flag: string) {
  return (value: string): number => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$/i.exec(value);
    if (!m) throw new InvalidInputError(`${flag} must be a size like 5GB or 500MB, got "${value}"`);
    const unit = (m[2] ?? 'b').toLowerCase();
    const scale: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
    return Math.round(Number(m[1]) * scale[unit]!);
  };
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** A retention as printed: two decimals (or `digits`), n/a where it is undefined (no expert, a failed item). */
export const formatRetention = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined ? 'n/a' : v.toFixed(digits));
