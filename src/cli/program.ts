// The CLI's shape: a commander program whose commands live one per file in ./commands. Errors a user can fix
// print one line on stderr and exit with code 2; anything else is a bug and exits with 1 and a stack trace.
import { Command, CommanderError } from 'commander';
import { isLoraforgeError } from '../errors.js';

export type CommandModule = (program: Command) => void;

export function buildProgram(modules: CommandModule[]): Command {
  const program = new Command('loraforge')
    .description('Register, merge, serve and compare PEFT LoRA adapters')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of modules) register(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

export async function runProgram(program: Command, argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // help and version are not errors; commander already printed its message
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return 2;
  }
  if (isLoraforgeError(err)) {
    process.stderr.write(`loraforge: ${err.message}\n`);
    return 2;
  }
  process.stderr.write(`loraforge: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}
