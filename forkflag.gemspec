# frozen_string_literal: true

require_relative "lib/forkflag/version"

Gem::Specification.new do |spec|
  spec.name = "forkflag"
  spec.version = Forkflag::VERSION
  spec.authors = ["forkflag developers"]
  spec.summary = "Unleash feature flags for Ruby, evaluated in Rust, correct across fork"
  spec.description = <<~DESC
    A client for Unleash feature flags: the full client specification (strategies,
    constraints, segments, variants, dependencies, custom strategies) evaluated in a
    Rust core without locks or allocations, flags kept fresh and metrics reported by
    native background threads. It stays correct when the process forks (Puma cluster,
    Unicorn, Pitchfork, Passenger, Spring): create the client once, before the fork,
    and every worker evaluates at once. Ships the official Unleash SDK's API as
    forkflag/unleash. The x86_64-linux platform gem carries the compiled core; the
    source gem builds it with cargo when installed.
  DESC
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"

  # What the gem needs, from the files git tracks: the Ruby code, the Rust
  # sources and manifests extconf.rb builds, and the docs.
  shipped = %w[
    lib/**/*.rb ext/forkflag/extconf.rb ext/**/Cargo.toml ext/**/src/**/*.rs ext/**/benches/**/*.rs
    Cargo.toml Cargo.lock README.md CHANGELOG.md LICENSE docs/**/*.md
  ]
  tracked = IO.popen(%w[git ls-files -z], chdir: __dir__, &:read).split("\0")
  spec.files = tracked.select do |file|
    shipped.any? { |pattern| File.fnmatch?(pattern, file, File::FNM_PATHNAME) }
  end
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/forkflag/extconf.rb"]
  spec.metadata["rubygems_mfa_required"] = "true"
end
