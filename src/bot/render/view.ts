// What the bot shows in one message: text, embeds, buttons and files; rendered from the API's answers.
import type { APIActionRowComponent, APIButtonComponent, APIEmbed, AttachmentBuilder } from 'discord.js';

export interface MessageView {
  content: string;
  embeds: APIEmbed[];
  components: APIActionRowComponent<APIButtonComponent>[];
  files?: AttachmentBuilder[];
}
