# frozen_string_literal: true

require_relative "lib/forkflag/version"

Gem::Specification.new do |spec|
  spec.name = "forkflag"
  spec.version = Forkflag::VERSION
  spec.authors = ["forkflag developers"]
  spec.summary = "Unleash feature flags for Ruby, evaluated in Rust, correct across fork"
  spec.description = <<~DESC
    forkflag evaluates Unleash feature flags in a Rust core, keeps them fresh from
    native background threads, and stays correct when the process forks (Pitchfork,
    Puma cluster, Unicorn, Passenger, Spring): create the client once, before the fork.
  DESC
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"

  spec.files = Dir[
    "lib/**/*.rb", "ext/forkflag/extconf.rb", "ext/**/Cargo.toml", "ext/**/src/**/*.rs",
    "ext/**/benches/**/*.rs",
    "Cargo.toml", "Cargo.lock", "README.md", "LICENSE", "docs/**/*.md"
  ]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/forkflag/extconf.rb"]
  spec.metadata["rubygems_mfa_required"] = "true"
end
