// Validates an AsyncAPI document with the official parser (@asyncapi/parser,
// installed by scripts/tools; NODE_PATH points at it). Exit status 1 and the
// diagnostics when it has errors or warnings.
//   node scripts/asyncapi-check.js events/asyncapi.json
const fs = require('fs');
const { Parser } = require('@asyncapi/parser');

async function main() {
  const text = fs.readFileSync(process.argv[2], 'utf8');
  const { document, diagnostics } = await new Parser().parse(text);
  // Severity 0 is an error, 1 a warning; hints and information are kept quiet.
  const serious = diagnostics.filter((d) => d.severity <= 1);
  for (const d of serious) {
    console.log(`${d.severity === 0 ? 'error' : 'warning'} ${d.code} at ${d.path.join('.')}: ${d.message}`);
  }
  if (!document || serious.length > 0) {
    process.exit(1);
  }
  console.log(`valid AsyncAPI ${document.version()}: ${document.channels().length} channels, ` +
    `${document.messages().length} messages`);
}

main().catch((e) => { console.error(e); process.exit(1); });
