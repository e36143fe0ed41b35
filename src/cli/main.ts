// Entry point of the `loraforge` command.
import { buildProgram, runProgram, type CommandModule } from './program.js';

const modules: CommandModule[] = [];

const code = await runProgram(buildProgram(modules), process.argv);
process.exitCode = code;
