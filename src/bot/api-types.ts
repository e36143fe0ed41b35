// The API's shapes as the bot sees them, taken from the typed client (the bot imports nothing but the client).
import type { LoraforgeClient, MergeStreamEvent } from '../client/index.js';

export type AdapterRecord = Awaited<ReturnType<LoraforgeClient['adapters']['list']>>[number];
export type AdapterDetail = Awaited<ReturnType<LoraforgeClient['adapters']['get']>>;
export type RegisterResult = Awaited<ReturnType<LoraforgeClient['adapters']['registerPath']>>;
export type MergeStatus = Awaited<ReturnType<LoraforgeClient['merges']['get']>>;
export type MergeRequest = Parameters<LoraforgeClient['merges']['create']>[0];
export type MergeMethod = MergeRequest['method'];
export type MergeProgress = Extract<MergeStreamEvent, { event: 'progress' }>['data'];
