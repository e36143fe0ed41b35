// Entry point of the `loraforge` command.
import { serveCommand } from './commands/serve.js';
import { buildProgram, runProgram, type CommandModule } from './program.js';

const modules: CommandModule[] = [
  serveCommand,
];

const code = await runProgram(buildProgram(modules), process.argv);
process.exitCode = code;
