"""Workbook tooling, not pipeline steps: the headless notebook runner (`notebooks`), the workshop
build (`workshop`), the benchmark command and its `bench_*` functions (`bench`, `benchmarks`) and
the environment check of the setup notebook (`environment`)."""
