// The fake Discord test harness: see fake-discord.ts.
export { FakeDiscord, InteractionHandle, ACK_WINDOW_MS, TOKEN_LIFETIME_MS } from './fake-discord.js';
export type { RecordedRequest, Violation, ViolationKind, FakeDiscordOptions, WaitOptions, UploadedFile } from './fake-discord.js';
export type { FakeMember, FakeMessage, FakeRole, FakeUser, FakeChannel } from './model.js';
export type { RateLimitRuleSpec } from './rate-limits.js';
