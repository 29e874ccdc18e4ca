// `npm run docs`: writes docs/configuration.md from the settings table (src/config/reference.ts).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderConfigurationReference } from '../src/config/reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const file = path.join(root, 'docs', 'configuration.md');
writeFileSync(file, renderConfigurationReference());
process.stdout.write(`wrote ${path.relative(process.cwd(), file) || file}\n`);
