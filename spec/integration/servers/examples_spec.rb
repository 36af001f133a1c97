# frozen_string_literal: true

# Each example configuration boots examples/config.ru as its header says,
# with the embedded default (examples/flags.json), and serves a request.
RSpec.describe "examples/", :integration do
  include_context "server processes", "example"

  # No FORKFLAG_* source from the environment: the example's own default.
  let(:env) { ServerChecks::EXAMPLE_ENV_UNSET.merge("WORKERS" => 2) }

  def serve_one(command, stop_signal)
    server = ServerProcess.new(command, name: "example", env: env)
    response = serve(server)
    expect(response.flags).to include("new-checkout" => false, "banner" => a_string_matching(/\A(blue|gold)\z/))
    # A forked worker (Pitchfork's are forked through a mold and a middle
    # process), with its own native thread.
    expect(response.body).to include("ready" => true, "generation" => be >= 1, "native_threads" => 1)
    expect_clean_stop(server, signal: stop_signal, timeout: 20)
  end

  it "config.ru under examples/puma.rb" do
    serve_one([Gem.ruby, ServerProcess.executable("puma"), "-C", "examples/puma.rb", "examples/config.ru"], "TERM")
  end

  it "config.ru under examples/unicorn.conf.rb" do
    serve_one([Gem.ruby, ServerProcess.executable("unicorn"), "-c", "examples/unicorn.conf.rb",
               "examples/config.ru"], "QUIT")
  end

  it "config.ru under examples/pitchfork.conf.rb" do
    build = ENV.fetch("FORKFLAG_PITCHFORK", "")
    skip("skipped: FORKFLAG_PITCHFORK not set (Pitchfork is not packaged by Debian)") if build.empty?

    serve_one([Gem.ruby, "-I", File.join(build, "lib"), File.join(build, "exe", "pitchfork"),
               "-c", "examples/pitchfork.conf.rb", "examples/config.ru"], "QUIT")
  end
end
