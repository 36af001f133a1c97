# frozen_string_literal: true

require "puma/plugin"
require_relative "../../forkflag/puma"

# `plugin :forkflag` in config/puma.rb: wires forkflag's fork hooks (see
# Forkflag::Puma).
#
# The hooks are added when Puma starts the plugin (start(launcher)), before
# the master forks, rather than through the plugin's config(dsl) callback:
# Puma 5.6 drops the first option the configuration file set when a plugin
# has config(dsl) (its DSL calls Hash#shift on the file's options before
# offering them to the plugin), so `workers 3` on the first line would be
# lost.
Puma::Plugin.create do
  def start(launcher)
    Forkflag::Puma.install(launcher.config.options)
  end
end
