// Entry point of the `loraforge` command.
import { buildModelCommand } from './commands/build-model.js';
import { generateCommand } from './commands/generate.js';
import { makeDemoModelCommand } from './commands/make-demo-model.js';
import { serveCommand } from './commands/serve.js';
import { buildProgram, runProgram, type CommandModule } from './program.js';

const modules: CommandModule[] = [
  serveCommand,
  buildModelCommand,
  generateCommand,
  makeDemoModelCommand,
];

const code = await runProgram(buildProgram(modules), process.argv);
process.exitCode = code;
