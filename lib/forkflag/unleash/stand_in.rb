# frozen_string_literal: true

# Loaded by this gem's lib/unleash.rb and lib/unleash/*.rb, which stand in
# for the official SDK's files of those names: `require "unleash"` (and
# "unleash/context", ...) loads the compatibility layer, or does nothing
# once it is loaded. Both the official gem and the layer in one bundle is
# an error, not a silent choice between them.
if Gem.respond_to?(:loaded_specs) && Gem.loaded_specs.key?("unleash")
  raise LoadError, "both the unleash gem and forkflag's compatibility layer (forkflag/unleash) are in this " \
                   "bundle; keep one: remove the unleash gem to use forkflag/unleash"
end
require_relative "../unleash"
