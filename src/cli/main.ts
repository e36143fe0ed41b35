// Entry point of the `loraforge` command.
import { botCommand } from './commands/bot.js';
import { buildModelCommand } from './commands/build-model.js';
import { generateCommand } from './commands/generate.js';
import { healthcheckCommand } from './commands/healthcheck.js';
import { makeDemoModelCommand } from './commands/make-demo-model.js';
import { registerCommandsCommand } from './commands/register-commands.js';
import { serveCommand } from './commands/serve.js';
import { buildProgram, runProgram, type CommandModule } from './program.js';

const modules: CommandModule[] = [
  serveCommand,
  buildModelCommand,
  generateCommand,
  makeDemoModelCommand,
  botCommand,
  registerCommandsCommand,
  healthcheckCommand,
];

const code = await runProgram(buildProgram(modules), process.argv);
process.exitCode = code;
