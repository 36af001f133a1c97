# frozen_string_literal: true

module Forkflag
  # Loads the compiled library, from the first of these places that has it:
  #
  # 1. +lib/forkflag/<major.minor>/forkflag.so+: the precompiled platform gem
  #    (+forkflag-<version>-x86_64-linux+), one library per Ruby minor it carries;
  # 2. +lib/forkflag/forkflag.so+: a checkout built with +rake compile+;
  # 3. +forkflag/forkflag.so+ on the load path: the source gem, whose
  #    +extconf.rb+ installs it in the gem's extension directory.
  #
  # A library that is present but fails to load (a glibc older than the one
  # it was built against, say) raises its own LoadError, not the next place's.
  #
  # @api private
  module NativeLibrary
    # The running Ruby's ABI as the platform gem names its directories: "3.1".
    ABI = RUBY_VERSION[/\A\d+\.\d+/]

    # Requires the library once.
    #
    # @return [void]
    # @raise [LoadError] when no place has it, or the one found cannot be loaded
    def self.load
      [File.join(__dir__, ABI, "forkflag.so"), File.join(__dir__, "forkflag.so")].each do |path|
        return require(path) if File.file?(path)
      end
      require "forkflag/forkflag"
    end
  end
end

Forkflag::NativeLibrary.load
