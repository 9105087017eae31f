import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CONFIG_DOCS_PATH, renderConfigDocs } from '../../scripts/config-docs.js';
import { ConfigSchema } from '../../src/config/config.js';

describe('the configuration reference', () => {
  it('describes every setting in the schema itself', () => {
    const undescribed = Object.entries(ConfigSchema.shape)
      .filter(([, field]) => !field.description)
      .map(([name]) => name);
    expect(undescribed).toEqual([]);
  });

  it('is what npm run docs renders from the schema', async () => {
    const committed = await readFile(CONFIG_DOCS_PATH, 'utf8');
    const rendered = await renderConfigDocs();
    if (committed !== rendered) {
      expect.fail('docs/configuration.md is out of date: run npm run docs');
    }
  });
});
