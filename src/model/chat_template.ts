// A model's chat template (Jinja, through @huggingface/jinja), with the library's raw errors
// typed: a template that does not parse is MALFORMED_FILE naming where it came from; one that
// fails while rendering these messages (a `raise_exception` such as "roles must alternate",
// an undefined method) is INVALID_ARGUMENT messages with the template's own words.
import { Template } from '@huggingface/jinja';
import { InvalidArgumentError, MalformedFileError } from '../errors.ts';

export function renderChatTemplate(template: string, vars: Record<string, unknown>, file = 'tokenizer_config.json (chat_template)'): string {
  let t: Template;
  try {
    t = new Template(template);
  } catch (e) {
    throw new MalformedFileError(file, `the chat template does not parse (${(e as Error)?.message ?? String(e)})`);
  }
  try {
    return t.render(vars);
  } catch (e) {
    throw new InvalidArgumentError('messages', `the model's chat template refused them (${(e as Error)?.message ?? String(e)})`);
  }
}
