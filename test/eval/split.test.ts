// The suites' parts against sizes worked out by hand: a quarter (rounded up, at least one) calibration, a quarter
// dev, the rest test, per category; disjoint, and the same whatever order the items come in; the tune part (both
// parts before test); calibration items that cover their category's phrasings.
import { describe, expect, it } from 'vitest';
import { calibrationItems, itemsOfPart, splitSuite } from '../../src/eval/split.js';

const items = (category: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${category}-${i}`, category, prompt: `prompt ${i} of ${category}` }));

describe('splitSuite', () => {
  it.each([
    [1, 1, 0, 0],
    [2, 1, 1, 0],
    [3, 1, 1, 1],
    [4, 1, 1, 2],
    [8, 2, 2, 4],
    [40, 10, 10, 20],
  ])('%i items of a category: %i calibration, %i dev, %i test', (n, calibration, dev, test) => {
    const all = [...items('a', n), ...items('b', 5)];
    const counts = (part: 'calibration' | 'dev' | 'test') => itemsOfPart(all, part).filter((i) => i.category === 'a').length;
    expect([counts('calibration'), counts('dev'), counts('test')]).toEqual([calibration, dev, test]);
  });

  it('puts every item in one part, whatever the order the items come in', () => {
    const all = [...items('a', 13), ...items('b', 7)];
    const parts = splitSuite(all);
    expect(parts.size).toBe(all.length);
    expect(splitSuite([...all].reverse())).toEqual(parts);
    const byPart = ['calibration', 'dev', 'test'].map((p) => all.filter((i) => parts.get(i.id) === p).map((i) => i.id));
    expect(byPart.flat().sort()).toEqual(all.map((i) => i.id).sort());
  });

  it('scores for an eval part: tune = calibration and dev, in suite order; all = every item', () => {
    const all = [...items('a', 8), ...items('b', 40)];
    const parts = splitSuite(all);
    const tune = itemsOfPart(all, 'tune');
    expect(tune).toEqual(all.filter((i) => parts.get(i.id) !== 'test'));
    expect(tune.filter((i) => i.category === 'a')).toHaveLength(4);
    expect(tune.filter((i) => i.category === 'b')).toHaveLength(20);
    expect(itemsOfPart(all, 'all')).toEqual(all);
  });

  it('gives calibration items of one category, at most n, all from the calibration part', () => {
    const all = [...items('a', 40), ...items('b', 40)];
    const parts = splitSuite(all);
    const five = calibrationItems(all, 'a', 5);
    expect(five).toHaveLength(5);
    for (const item of five) expect([item.category, parts.get(item.id)]).toEqual(['a', 'calibration']);
    expect(calibrationItems(all, 'a', 50)).toHaveLength(10);
  });

  it('picks calibration items that cover the category: no second copy of a phrasing while another is left', () => {
    // 40 items of 4 phrasings (10 each, values differ): the calibration part's 10 hold several of each
    const phrasings = ['Show the disk usage of dir{i}', 'Restart the service svc{i} now', 'Why does host{i} refuse SSH logins?', 'Count lines in file{i}.txt'];
    const all = Array.from({ length: 40 }, (_, i) => ({ id: `a-${i}`, category: 'a', prompt: phrasings[i % 4]!.replace('{i}', String(i)) }));
    const pool = itemsOfPart(all, 'calibration').map((i) => i.prompt.replace(/\d+/g, ''));
    expect(new Set(pool).size).toBe(4);
    const four = calibrationItems(all, 'a', 4).map((i) => i.prompt.replace(/\d+/g, ''));
    expect(new Set(four).size).toBe(4);
    expect(calibrationItems(all, 'a', 4)).toEqual(calibrationItems([...all].reverse(), 'a', 4).sort((x, y) => all.indexOf(x) - all.indexOf(y)));
  });
});
