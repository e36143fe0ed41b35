// Entry point of the `loraforge` command.
import { generateCommand } from './commands/generate.js';
import { serveCommand } from './commands/serve.js';
import { buildProgram, runProgram, type CommandModule } from './program.js';

const modules: CommandModule[] = [
  serveCommand,
  generateCommand,
];

const code = await runProgram(buildProgram(modules), process.argv);
process.exitCode = code;
