# frozen_string_literal: true

# `require "forkflag/rails"` in config/application.rb (or Bundler.require
# with the gem's require: "forkflag/rails") adds forkflag's Railtie.
require "forkflag"
require "forkflag/railtie"
