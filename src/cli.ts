// Placeholder until the CLI lands (being written now).
process.stderr.write('slow-proxy: CLI not built yet\n');
process.exitCode = 2;
