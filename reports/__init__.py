"""Report renderers and run comparison: a run or suite output as report.{json,md,html}, and `compare`."""
