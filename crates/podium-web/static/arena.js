// The arena's voting panel: send a prompt, stream both anonymous answers
// side by side, vote, then see which models answered. Every answer is put in
// the page as text (textContent), never as HTML.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("arena-form");
  if (!form) {
    return;
  }
  var text = document.getElementById("arena-prompt-text");
  var send = document.getElementById("arena-send");
  var draw = document.getElementById("arena-draw");
  var status = document.getElementById("arena-status");
  var categoryBadge = document.getElementById("arena-category");
  var result = document.getElementById("arena-result");
  var buttons = Array.prototype.slice.call(document.querySelectorAll(".arena-buttons button"));
  var sides = {
    a: { pane: document.getElementById("answer-a"), text: document.getElementById("text-a"), reveal: document.getElementById("reveal-a") },
    b: { pane: document.getElementById("answer-b"), text: document.getElementById("text-b"), reveal: document.getElementById("reveal-b") },
  };
  var drawn = null;
  var token = null;

  function say(message, kind) {
    status.textContent = message;
    status.className = "arena-status" + (kind ? " " + kind : "");
  }

  function setVoting(enabled) {
    buttons.forEach(function (button) {
      button.disabled = !enabled;
    });
  }

  function showResult(message, kind) {
    result.textContent = message;
    result.className = "arena-result" + (kind ? " " + kind : "");
    result.hidden = false;
  }

  // The message of a JSON error body, else the status line.
  function errorMessage(response) {
    return response.json().then(
      function (body) {
        return (body && body.error && body.error.message) || response.statusText;
      },
      function () {
        return response.status + " " + response.statusText;
      }
    );
  }

  function resetPanes() {
    ["a", "b"].forEach(function (side) {
      var s = sides[side];
      s.text.textContent = "";
      s.reveal.textContent = "";
      s.pane.className = "answer streaming";
    });
    buttons.forEach(function (button) {
      button.classList.remove("chosen");
    });
    result.hidden = true;
  }

  draw.addEventListener("click", function () {
    fetch("/arena/prompt", { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          return errorMessage(response).then(function (m) {
            throw new Error(m);
          });
        }
        return response.json();
      })
      .then(function (prompt) {
        drawn = prompt;
        text.value = prompt.prompt;
        categoryBadge.textContent = prompt.category || "";
        categoryBadge.hidden = !prompt.category;
        text.focus();
      })
      .catch(function (error) {
        say(error.message, "bad");
      });
  });

  text.addEventListener("input", function () {
    if (drawn && text.value !== drawn.prompt) {
      categoryBadge.hidden = true;
    }
  });

  function handle(event) {
    if (event.event === "battle") {
      token = event.token;
    } else if (event.event === "chunk") {
      sides[event.side].text.appendChild(document.createTextNode(event.text));
    } else if (event.event === "done") {
      sides[event.side].pane.className = "answer done";
      if (event.cut) {
        var note = document.createElement("p");
        note.className = "cut";
        note.textContent = "(answer cut here: too long)";
        sides[event.side].pane.appendChild(note);
      }
    } else if (event.event === "error") {
      token = null;
      say(event.message, "bad");
      ["a", "b"].forEach(function (side) {
        sides[side].pane.className = "answer";
      });
    } else if (event.event === "ready") {
      setVoting(true);
      say("Both answers are in. Which one is better?", "good");
    }
  }

  form.addEventListener("submit", function (submitEvent) {
    submitEvent.preventDefault();
    var prompt = text.value.trim();
    if (!prompt) {
      say("Type a prompt, or draw one.", "bad");
      return;
    }
    token = null;
    setVoting(false);
    send.disabled = true;
    resetPanes();
    say("Both models are answering…");
    var body = { prompt: prompt };
    if (drawn && drawn.prompt === text.value) {
      body.prompt_id = drawn.id;
    }
    fetch("/arena/battles", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
      body: JSON.stringify(body),
    })
      .then(function (response) {
        if (!response.ok) {
          return errorMessage(response).then(function (m) {
            throw new Error(m);
          });
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffered = "";
        function pump() {
          return reader.read().then(function (part) {
            if (part.done) {
              return;
            }
            buffered += decoder.decode(part.value, { stream: true });
            var lines = buffered.split("\n");
            buffered = lines.pop();
            lines.forEach(function (line) {
              if (line.trim()) {
                handle(JSON.parse(line));
              }
            });
            return pump();
          });
        }
        return pump();
      })
      .catch(function (error) {
        say(error.message, "bad");
        ["a", "b"].forEach(function (side) {
          sides[side].pane.className = "answer";
        });
      })
      .then(function () {
        send.disabled = false;
      });
  });

  buttons.forEach(function (button) {
    button.addEventListener("click", function () {
      if (!token) {
        return;
      }
      var winner = button.getAttribute("data-winner");
      setVoting(false);
      fetch("/arena/vote", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ token: token, winner: winner }),
      })
        .then(function (response) {
          if (!response.ok) {
            return errorMessage(response).then(function (m) {
              // Over a limit the vote was not counted: it may be cast later.
              if (response.status === 429) {
                setVoting(true);
              }
              throw new Error(m);
            });
          }
          return response.json();
        })
        .then(function (vote) {
          token = null;
          sides.a.reveal.textContent = vote.name_a;
          sides.b.reveal.textContent = vote.name_b;
          sides.a.reveal.title = vote.model_a;
          sides.b.reveal.title = vote.model_b;
          sides.a.pane.className = "answer revealed" + (winner === "a" ? " winner" : "");
          sides.b.pane.className = "answer revealed" + (winner === "b" ? " winner" : "");
          button.classList.add("chosen");
          if (vote.anonymous) {
            showResult("Thank you: your vote is counted. Send another prompt for a new battle.", "good");
          } else {
            showResult(
              "Thank you: your vote is kept, but left out of the ratings, because an answer named “" +
                vote.identity_word +
                "”.",
              "warn"
            );
          }
          say("");
        })
        .catch(function (error) {
          showResult(error.message, "bad");
        });
    });
  });
});
