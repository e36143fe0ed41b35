/** A bench's progress goes to stderr, so that its table on stdout can be piped or pasted as it is. */
export const log = (line: string): void => void process.stderr.write(`${line}\n`);
